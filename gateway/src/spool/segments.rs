//! Segment files on disk: naming, recovery after a crash (truncating a torn tail), and reading
//! records back from an offset.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::record::{decode, Decoded, Spooled};

/// One segment file and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub id: u64,
    pub path: PathBuf,
    /// Bytes of valid records in the file.
    pub bytes: u64,
    /// Records in the file.
    pub records: u64,
    /// When its first record was spooled (ms since the epoch).
    pub first_written_ms: Option<u64>,
}

pub fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.seg"))
}

/// Finds the segments in `dir`, oldest first, cutting each at its first damaged record.
/// A torn tail is what a crash mid-write leaves; it was never acknowledged, so dropping it
/// loses nothing a client was told is safe.
pub fn recover(dir: &Path) -> std::io::Result<Vec<Segment>> {
    fs::create_dir_all(dir)?;
    let mut ids: Vec<u64> = fs::read_dir(dir)?
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".seg")?.parse().ok()
        })
        .collect();
    ids.sort_unstable();
    let mut segments = Vec::new();
    for id in ids {
        let path = segment_path(dir, id);
        let mut bytes = Vec::new();
        File::open(&path)?.read_to_end(&mut bytes)?;
        let (mut offset, mut records, mut first_written_ms) = (0usize, 0u64, None);
        while offset < bytes.len() {
            match decode(&bytes[offset..]) {
                Decoded::Record(spooled) => {
                    first_written_ms.get_or_insert(spooled.written_at_ms);
                    offset += spooled.frame_len;
                    records += 1;
                }
                Decoded::Incomplete | Decoded::Corrupt => {
                    tracing::warn!(segment = %path.display(), kept = offset, dropped = bytes.len() - offset,
                        "spool segment has a damaged tail; truncating it");
                    OpenOptions::new().write(true).open(&path)?.set_len(offset as u64)?;
                    break;
                }
            }
        }
        if records == 0 {
            fs::remove_file(&path)?;
            continue;
        }
        segments.push(Segment { id, path, bytes: offset as u64, records, first_written_ms });
    }
    Ok(segments)
}

/// Reads up to `max_records` records of `segment` starting at byte `offset`, stopping at
/// `max_bytes` of frames (at least one record is returned if there is one).
pub fn read_from(
    segment: &Segment,
    offset: u64,
    max_records: usize,
    max_bytes: usize,
) -> std::io::Result<Vec<Spooled>> {
    let remaining = segment.bytes.saturating_sub(offset) as usize;
    if remaining == 0 {
        return Ok(Vec::new());
    }
    let mut file = File::open(&segment.path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut buf = vec![0u8; remaining.min(max_bytes.max(super::record::FRAME_HEADER))];
    file.read_exact(&mut buf)?;
    let mut out = Vec::new();
    let mut at = 0usize;
    while out.len() < max_records && at < buf.len() {
        match decode(&buf[at..]) {
            Decoded::Record(spooled) => {
                at += spooled.frame_len;
                out.push(spooled);
            }
            Decoded::Incomplete if out.is_empty() && buf.len() >= super::record::FRAME_HEADER => {
                // A single record larger than the buffer: read exactly that frame.
                let len = super::record::FRAME_HEADER + u32::from_le_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
                let mut frame = vec![0u8; len];
                file.seek(SeekFrom::Start(offset))?;
                file.read_exact(&mut frame)?;
                if let Decoded::Record(spooled) = decode(&frame) {
                    out.push(spooled);
                }
                break;
            }
            Decoded::Incomplete => break,
            Decoded::Corrupt => {
                return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "spool record failed its CRC on read"))
            }
        }
    }
    Ok(out)
}
