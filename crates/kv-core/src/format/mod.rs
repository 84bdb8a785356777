//! Wire formats shared with other software. The native format is in
//! [`envelope`](crate::envelope).

pub mod percent;
pub mod pykv;
