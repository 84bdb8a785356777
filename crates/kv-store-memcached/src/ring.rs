//! A ketama-style consistent-hash ring: each server owns 160 points on a 32-bit circle; a key
//! belongs to the first point at or after its own hash. Adding or removing one server moves
//! only the keys of the arcs it gains or loses.

use sha2::{Digest, Sha256};

const POINTS_PER_SERVER: usize = 160;

#[derive(Debug)]
pub(crate) struct Ring {
    points: Vec<(u32, usize)>,
}

fn hash32(data: &[u8], chunk: usize) -> u32 {
    let d = Sha256::digest(data);
    u32::from_be_bytes([
        d[chunk * 4],
        d[chunk * 4 + 1],
        d[chunk * 4 + 2],
        d[chunk * 4 + 3],
    ])
}

impl Ring {
    pub(crate) fn new(servers: &[String]) -> Self {
        let mut points = Vec::with_capacity(servers.len() * POINTS_PER_SERVER);
        for (i, s) in servers.iter().enumerate() {
            for n in 0..POINTS_PER_SERVER / 4 {
                let label = format!("{s}-{n}");
                for chunk in 0..4 {
                    points.push((hash32(label.as_bytes(), chunk), i));
                }
            }
        }
        points.sort_unstable();
        Ring { points }
    }

    /// The index of the server owning `key`.
    pub(crate) fn server_for(&self, key: &[u8]) -> usize {
        if self.points.len() <= POINTS_PER_SERVER {
            return 0;
        }
        let h = hash32(key, 0);
        let i = self.points.partition_point(|&(p, _)| p < h);
        self.points.get(i).unwrap_or(&self.points[0]).1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_and_is_stable() {
        let servers = vec!["a:1".to_owned(), "b:2".to_owned(), "c:3".to_owned()];
        let ring = Ring::new(&servers);
        let mut counts = [0usize; 3];
        for i in 0..3000 {
            counts[ring.server_for(format!("key{i}").as_bytes())] += 1;
        }
        assert!(counts.iter().all(|&c| c > 500), "{counts:?}");
        // Removing one server keeps the other servers' keys where they were.
        let ring2 = Ring::new(&servers[..2]);
        for i in 0..3000 {
            let k = format!("key{i}");
            let before = ring.server_for(k.as_bytes());
            if before < 2 {
                assert_eq!(ring2.server_for(k.as_bytes()), before);
            }
        }
    }
}
