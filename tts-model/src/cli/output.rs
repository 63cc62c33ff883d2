//! Atomic output files and the streaming WAV / raw-f32 writers.
//!
//! Every output is written to a hidden temporary file in the destination's directory and renamed
//! over the destination only when everything succeeded; on any error (or panic) the temporary
//! file is deleted, so no partial output is ever left behind.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use tempfile::NamedTempFile;

/// A file that appears at `dest` only on [`AtomicFile::commit`].
pub struct AtomicFile {
    tmp: NamedTempFile,
    dest: PathBuf,
}

impl AtomicFile {
    /// Creates the temporary file next to `dest`; fails early when `dest` cannot be written.
    pub fn create(dest: &Path) -> Result<Self> {
        if dest.is_dir() {
            bail!(
                "output path {} is a directory; give a file name",
                dest.display()
            );
        }
        let name = dest
            .file_name()
            .ok_or_else(|| anyhow::anyhow!("output path {} has no file name", dest.display()))?;
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !dir.is_dir() {
            bail!(
                "cannot write {}: directory {} does not exist",
                dest.display(),
                dir.display()
            );
        }
        let mut prefix = std::ffi::OsString::from(".");
        prefix.push(name);
        prefix.push(".");
        let tmp = tempfile::Builder::new()
            .prefix(&prefix)
            .suffix(".tmp")
            .tempfile_in(&dir)
            .with_context(|| {
                format!(
                    "cannot write {} (creating a file in {} failed)",
                    dest.display(),
                    dir.display()
                )
            })?;
        Ok(AtomicFile {
            tmp,
            dest: dest.to_path_buf(),
        })
    }

    /// A second handle on the temporary file for writing.
    pub fn handle(&self) -> Result<File> {
        self.tmp
            .as_file()
            .try_clone()
            .context("cannot duplicate the output file handle")
    }

    /// The destination.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Flushes to disk and renames the temporary file over the destination.
    pub fn commit(self) -> Result<()> {
        let f = self.tmp.as_file();
        f.sync_all()
            .with_context(|| format!("cannot write {}", self.dest.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // Temporary files are created 0600; outputs get the usual 0644.
            f.set_permissions(std::fs::Permissions::from_mode(0o644))
                .with_context(|| format!("cannot set permissions of {}", self.dest.display()))?;
        }
        let dest = self.dest.clone();
        self.tmp
            .persist(&dest)
            .map_err(|e| e.error)
            .with_context(|| format!("cannot create {}", dest.display()))?;
        Ok(())
    }
}

/// Piper's conversion of one sentence to 16-bit PCM: divide by the sentence's peak (silence if
/// the peak is below 1e-8), clip to [-1, 1], scale by 32767, clip, truncate toward zero — all in
/// f32, as numpy does it in piper-tts.
pub fn piper_pcm16(samples: &[f32]) -> impl Iterator<Item = i16> + '_ {
    let peak = samples.iter().fold(0.0f32, |m, &x| m.max(x.abs()));
    // `f32::max` skips NaN, so `peak` is a number; NaN samples become 0 through `as i16`.
    let silent = peak < 1e-8;
    samples.iter().map(move |&x| {
        if silent {
            return 0;
        }
        let v = (x / peak).clamp(-1.0, 1.0);
        // `as` truncates toward zero like numpy's astype(int16) on values within range.
        (v * 32767.0).clamp(-32767.0, 32767.0) as i16
    })
}

/// Streams audio to the outputs: the WAV gets each sentence peak-normalised, the optional raw
/// file gets every chunk as it is produced.
pub struct AudioSink {
    wav: hound::WavWriter<BufWriter<File>>,
    wav_file: AtomicFile,
    raw: Option<(BufWriter<File>, AtomicFile)>,
    samples: u64,
}

impl AudioSink {
    /// Creates both outputs (nothing is visible at the destinations until [`AudioSink::finish`]).
    pub fn create(wav_path: &Path, raw_path: Option<&Path>, sample_rate: u32) -> Result<Self> {
        if raw_path.is_some_and(|r| r == wav_path) {
            bail!(
                "--out and --out-f32 name the same file {}",
                wav_path.display()
            );
        }
        let wav_file = AtomicFile::create(wav_path)?;
        let raw = match raw_path {
            Some(p) => {
                let f = AtomicFile::create(p)?;
                Some((BufWriter::new(f.handle()?), f))
            }
            None => None,
        };
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let wav = hound::WavWriter::new(BufWriter::new(wav_file.handle()?), spec)
            .with_context(|| format!("cannot write {}", wav_path.display()))?;
        Ok(AudioSink {
            wav,
            wav_file,
            raw,
            samples: 0,
        })
    }

    /// Raw model output of one chunk (written at once to `--out-f32`).
    pub fn raw_chunk(&mut self, chunk: &[f32]) -> Result<()> {
        if let Some((w, f)) = &mut self.raw {
            for x in chunk {
                w.write_all(&x.to_le_bytes())
                    .with_context(|| format!("cannot write {}", f.dest().display()))?;
            }
        }
        Ok(())
    }

    /// One whole sentence, peak-normalised into the WAV.
    pub fn sentence(&mut self, samples: &[f32]) -> Result<()> {
        let dest = self.wav_file.dest().display().to_string();
        let mut w = self.wav.get_i16_writer(samples.len() as u32);
        for s in piper_pcm16(samples) {
            w.write_sample(s);
        }
        w.flush().with_context(|| format!("cannot write {dest}"))?;
        self.samples += samples.len() as u64;
        Ok(())
    }

    /// Samples written to the WAV so far.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// Finalises the WAV header, flushes, and moves both files into place.
    pub fn finish(self) -> Result<()> {
        let dest = self.wav_file.dest().display().to_string();
        self.wav
            .finalize()
            .with_context(|| format!("cannot finish {dest} (a WAV file holds at most 4 GiB)"))?;
        self.wav_file.commit()?;
        if let Some((mut w, f)) = self.raw {
            w.flush()
                .with_context(|| format!("cannot write {}", f.dest().display()))?;
            drop(w);
            f.commit()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcm16_matches_piper_numpy() {
        // Hand-computed: peak 0.5 -> x/0.5 -> *32767 -> truncate toward zero.
        let got: Vec<i16> = piper_pcm16(&[0.25, -0.5, 0.1, 0.0, -0.0001]).collect();
        // 0.25/0.5*32767 = 16383.5 -> 16383; -32767; 0.2*32767 = 6553.4 -> 6553; 0; -0.0002*32767 = -6.55 -> -6
        assert_eq!(got, vec![16383, -32767, 6553, 0, -6]);
        let silent: Vec<i16> = piper_pcm16(&[1e-9, -1e-9]).collect();
        assert_eq!(silent, vec![0, 0]);
        assert_eq!(piper_pcm16(&[]).count(), 0);
        let nan: Vec<i16> = piper_pcm16(&[f32::NAN, 0.5]).collect();
        assert_eq!(nan.len(), 2);
    }

    #[test]
    fn atomic_file_appears_only_on_commit() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("x.bin");
        let f = AtomicFile::create(&dest).unwrap();
        f.handle().unwrap().write_all(b"abc").unwrap();
        assert!(!dest.exists());
        f.commit().unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"abc");
        // Dropped without commit: nothing left, not even the temporary file.
        let dest2 = dir.path().join("y.bin");
        let g = AtomicFile::create(&dest2).unwrap();
        g.handle().unwrap().write_all(b"abc").unwrap();
        drop(g);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("x.bin")]);
    }

    #[test]
    fn atomic_file_errors() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            AtomicFile::create(dir.path())
                .err()
                .unwrap()
                .to_string()
                .contains("is a directory")
        );
        let missing = dir.path().join("nope/x.wav");
        assert!(
            AtomicFile::create(&missing)
                .err()
                .unwrap()
                .to_string()
                .contains("does not exist")
        );
    }

    #[test]
    fn wav_sink_writes_pcm16() {
        let dir = tempfile::tempdir().unwrap();
        let wav = dir.path().join("a.wav");
        let raw = dir.path().join("a.f32");
        let mut sink = AudioSink::create(&wav, Some(&raw), 22050).unwrap();
        sink.raw_chunk(&[0.25, -0.5]).unwrap();
        sink.sentence(&[0.25, -0.5]).unwrap();
        sink.raw_chunk(&[0.1]).unwrap();
        sink.sentence(&[0.1]).unwrap();
        assert!(!wav.exists() && !raw.exists());
        sink.finish().unwrap();
        let r = hound::WavReader::open(&wav).unwrap();
        assert_eq!(r.spec().sample_rate, 22050);
        let s: Vec<i16> = r.into_samples::<i16>().map(Result::unwrap).collect();
        assert_eq!(s, vec![16383, -32767, 32767]);
        let bytes = std::fs::read(&raw).unwrap();
        let f: Vec<f32> = bytes
            .chunks(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(f, vec![0.25, -0.5, 0.1]);
    }
}
