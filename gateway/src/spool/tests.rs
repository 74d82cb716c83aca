//! The spool on a real directory: order, restarts, torn tails, bounds and segment cleanup.

use super::*;
use crate::record::RecordHeaders;

fn config(dir: &std::path::Path, fsync: FsyncPolicy) -> SpoolConfig {
    SpoolConfig {
        dir: dir.display().to_string(),
        segment_bytes: 300,
        fsync,
        fsync_interval_ms: 1,
        replay_batch: 3,
        ..SpoolConfig::default()
    }
}

fn record(n: usize) -> Record {
    Record {
        topic: "events.raw".into(),
        key: Some(format!("k{n}")),
        partition: (n % 2 == 1).then_some(n as i32 % 3),
        payload: format!("{{\"n\":{n}}}").into_bytes(),
        headers: RecordHeaders::new("web".into(), None, crate::protocols::Protocol::Segment),
    }
}

async fn drain(spool: &Arc<Spool>) -> Vec<Record> {
    let mut out = Vec::new();
    while let Some((batch, mark)) = spool.next_batch().await.expect("read") {
        out.extend(batch.into_iter().map(|s| s.record));
        spool.commit(mark).await.expect("commit");
    }
    out
}

#[tokio::test]
async fn replays_in_order_across_segments_and_a_restart() {
    let dir = tempfile::tempdir().expect("dir");
    let spool = Spool::open(&config(dir.path(), FsyncPolicy::Interval)).expect("open");
    let group_commit = tokio::spawn(spool.clone().run_group_commit());
    for chunk in (0..20).collect::<Vec<_>>().chunks(4) {
        spool.append(chunk.iter().map(|n| record(*n)).collect()).await.expect("append");
    }
    assert_eq!(spool.stats().records, 20);
    let segments = segment_files(dir.path());
    assert!(segments > 1, "small segment size rolls files, got {segments}");
    group_commit.abort();
    let _ = group_commit.await;
    drop(spool);

    let reopened = Spool::open(&config(dir.path(), FsyncPolicy::Request)).expect("reopen");
    assert_eq!(reopened.stats().records, 20, "the spool survives a restart");
    let replayed = drain(&reopened).await;
    assert_eq!(replayed, (0..20).map(record).collect::<Vec<_>>());
    assert!(reopened.is_empty());
    assert_eq!(segment_files(dir.path()), 0, "replayed segments are deleted");
}

fn segment_files(dir: &std::path::Path) -> usize {
    let names = std::fs::read_dir(dir).expect("ls").filter_map(|e| e.ok()?.file_name().into_string().ok());
    names.filter(|name| name.ends_with(".seg")).count()
}

#[tokio::test]
async fn a_second_process_cannot_open_a_spool_in_use() {
    let dir = tempfile::tempdir().expect("dir");
    let held = Spool::open(&config(dir.path(), FsyncPolicy::Request)).expect("open");
    let error = Spool::open(&config(dir.path(), FsyncPolicy::Request)).expect_err("the lock is held");
    assert!(matches!(error, SpoolError::Locked { .. }), "{error}");
    drop(held);
    Spool::open(&config(dir.path(), FsyncPolicy::Request)).expect("free again once the holder is gone");
}

#[tokio::test]
async fn a_torn_tail_is_cut_and_the_rest_kept() {
    let dir = tempfile::tempdir().expect("dir");
    let spool =
        Spool::open(&SpoolConfig { segment_bytes: 1 << 20, ..config(dir.path(), FsyncPolicy::Request) }).expect("open");
    spool.append(vec![record(1), record(2)]).await.expect("append");
    drop(spool);
    let path = std::fs::read_dir(dir.path())
        .expect("ls")
        .filter_map(|e| Some(e.ok()?.path()))
        .find(|p| p.extension().is_some_and(|x| x == "seg"))
        .expect("segment");
    let mut file = OpenOptions::new().append(true).open(&path).expect("open segment");
    file.write_all(&[0xC5, 200, 0, 0, 0, 1, 2]).expect("torn write");
    drop(file);

    let reopened = Spool::open(&config(dir.path(), FsyncPolicy::Request)).expect("reopen");
    assert_eq!(drain(&reopened).await, vec![record(1), record(2)]);
}

#[tokio::test]
async fn a_full_spool_refuses_and_conditional_appends_wait_for_a_backlog() {
    let dir = tempfile::tempdir().expect("dir");
    let spool = Spool::open(&SpoolConfig { max_bytes: 200, ..config(dir.path(), FsyncPolicy::Request) }).expect("open");
    let handed_back = spool.append_behind_backlog(vec![record(0)]).await;
    assert_eq!(handed_back, Ok(Some(vec![record(0)])), "empty spool: the caller goes to Kafka with its records");
    assert_eq!(spool.append(vec![record(1)]).await, Ok(()));
    assert_eq!(spool.append_behind_backlog(vec![record(2)]).await, Ok(None), "a backlog keeps new records behind it");
    let error = spool.append((3..10).map(record).collect()).await.expect_err("over max_bytes");
    assert!(matches!(error, SpoolError::Full { .. }), "{error}");
    assert_eq!(drain(&spool).await, vec![record(1), record(2)]);
}

/// Reads every unread batch ahead of the commit offset, as the replayer does with several
/// steps in flight.
async fn read_ahead(spool: &Arc<Spool>) -> Vec<(Vec<Record>, ReplayMark)> {
    let mut batches = Vec::new();
    while let Some((batch, mark)) = spool.next_batch().await.expect("read") {
        batches.push((batch.into_iter().map(|s| s.record).collect(), mark));
    }
    batches
}

#[tokio::test]
async fn the_cursor_reads_ahead_of_commits_across_segments_and_rewinds_to_the_first_unconfirmed() {
    let dir = tempfile::tempdir().expect("dir");
    let spool = Spool::open(&config(dir.path(), FsyncPolicy::Request)).expect("open");
    for chunk in (0..20).collect::<Vec<_>>().chunks(4) {
        spool.append(chunk.iter().map(|n| record(*n)).collect()).await.expect("append");
    }
    let first_pass = read_ahead(&spool).await;
    assert!(first_pass.len() > 2, "small batches and segments make several steps");
    let read: Vec<Record> = first_pass.iter().flat_map(|(records, _)| records.clone()).collect();
    assert_eq!(read, (0..20).map(record).collect::<Vec<_>>(), "everything is read once, in order, before any commit");
    assert_eq!(spool.stats().records, 20, "reading commits nothing");

    let (_, second_mark) = &first_pass[1];
    let error = spool.commit(*second_mark).await.expect_err("a gap would drop the first step");
    assert!(error.to_string().contains("out of order"), "{error}");
    spool.commit(first_pass[0].1).await.expect("first step");
    let committed = first_pass[0].1.records();

    // The second step failed: its records and every later one are read again.
    spool.rewind();
    let again: Vec<Record> = read_ahead(&spool).await.into_iter().flat_map(|(records, _)| records).collect();
    assert_eq!(again, (committed as usize..20).map(record).collect::<Vec<_>>());
    spool.rewind();
    assert_eq!(drain(&spool).await, (committed as usize..20).map(record).collect::<Vec<_>>());
    assert!(spool.is_empty());
    assert_eq!(segment_files(dir.path()), 0, "committed segments are deleted");

    spool.append(vec![record(20)]).await.expect("append after draining");
    assert_eq!(read_ahead(&spool).await.into_iter().flat_map(|(r, _)| r).collect::<Vec<_>>(), vec![record(20)]);
}
