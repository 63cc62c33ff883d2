//! DRAM banks: host memory allocated lazily in 64 KiB chunks (untouched memory reads as zero).

use std::collections::HashMap;

const CHUNK: u64 = 64 * 1024;

/// One DRAM bank.
#[derive(Default)]
pub struct DramBank {
    chunks: HashMap<u64, Box<[u8]>>,
}

impl DramBank {
    /// Reads `dst.len()` bytes at `addr` (the caller has checked the range).
    pub fn read(&self, mut addr: u64, dst: &mut [u8]) {
        let mut done = 0;
        while done < dst.len() {
            let ci = addr / CHUNK;
            let off = (addr % CHUNK) as usize;
            let n = (CHUNK as usize - off).min(dst.len() - done);
            match self.chunks.get(&ci) {
                Some(c) => dst[done..done + n].copy_from_slice(&c[off..off + n]),
                None => dst[done..done + n].fill(0),
            }
            done += n;
            addr += n as u64;
        }
    }

    /// Writes `src` at `addr` (the caller has checked the range).
    pub fn write(&mut self, mut addr: u64, src: &[u8]) {
        let mut done = 0;
        while done < src.len() {
            let ci = addr / CHUNK;
            let off = (addr % CHUNK) as usize;
            let n = (CHUNK as usize - off).min(src.len() - done);
            let c = self
                .chunks
                .entry(ci)
                .or_insert_with(|| vec![0u8; CHUNK as usize].into_boxed_slice());
            c[off..off + n].copy_from_slice(&src[done..done + n]);
            done += n;
            addr += n as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_across_chunks_read_back_and_untouched_reads_zero() {
        let mut b = DramBank::default();
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 + 3) as u8).collect();
        b.write(CHUNK - 100, &data);
        let mut back = vec![0u8; data.len()];
        b.read(CHUNK - 100, &mut back);
        assert_eq!(back, data);
        let mut z = vec![1u8; 16];
        b.read(100 * CHUNK, &mut z);
        assert!(z.iter().all(|&v| v == 0));
    }
}
