//! The scenarios every backend must pass. Each backend's test binary runs
//! them through [`conformance_tests!`](crate::conformance_tests) on a fresh
//! database per test.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use coliseum_domain::plans::{MAX_API_KEYS, Plan, Role};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use crate::{
    ApiKey, Appended, AuditQuery, AuditRecord, CellFilter, CellKey, DeadLetter, DeadLetterState, DerivedPart,
    DnaMutation, FanDay, FanDayKey, Grain, MAX_SEEKED_BUCKETS, NewApiKey, NewDelivery, NewEntry, NewReport,
    NewSchedule, NewSession, NewShare, NewUser, PipelineState, ProcessedBatch, ReportBrand, ReportQuota, ScheduleAfter,
    ShareEnd, ShareView, Store, StoreError, StripeChange, StripeOutcome,
};
use coliseum_domain::kpi::Kpis;

/// Generates one `#[tokio::test]` per scenario. `$fresh` is an async fn
/// returning `(Arc<dyn Store>, guard)`; the guard drops the database.
#[macro_export]
macro_rules! conformance_tests {
    ($fresh:path) => {
        $crate::conformance_tests!(@each $fresh,
            appended_entries_read_back_in_seq_order,
            an_event_id_is_stored_once,
            a_duplicate_in_another_month_is_still_a_duplicate,
            a_thousand_entries_append_in_one_call,
            read_after_pages_by_cursor,
            log_stats_count_unrecognized_entries,
            concurrent_appends_become_visible_in_seq_order,
            concurrent_appends_of_the_same_ids_accept_each_once,
            batches_add_to_cells_and_fan_days_and_move_the_cursor,
            sums_by_bucket_and_by_artist_are_the_sums_of_the_cells,
            a_cell_that_would_overflow_fails_its_batch,
            a_batch_from_a_stale_cursor_changes_nothing,
            batches_are_numbered_and_journaled_where_nodes_share_the_store,
            the_pause_flag_persists_and_a_reset_keeps_it,
            a_bulk_load_commits_only_at_its_end,
            dna_mutations_read_back_from_an_instant_in_order,
            dna_mutations_pruned_oldest_first_one_board_at_a_time,
            display_names_keep_the_newest_name_and_the_first_spelling,
            dead_letters_retry_replay_and_resolve,
            users_are_upserted_by_email,
            sessions_expire_and_revoke,
            a_user_sees_their_sessions_and_ends_the_others,
            signup_never_changes_an_existing_account,
            external_identities_find_link_or_create_users,
            api_keys_are_found_by_hash_until_revoked,
            stripe_events_apply_once_in_order_and_wait_for_a_link,
            concurrent_stripe_events_leave_the_newest_plan,
            audit_records_filter_and_page_newest_first,
            audited_actions_write_their_record_with_them,
            an_action_whose_audit_record_fails_does_not_happen,
            reports_count_against_a_quota_and_leave_when_discarded,
            share_links_end_rotate_and_count_their_views,
            schedules_are_claimed_once_and_move_on_after_each_delivery,
            alert_rules_keep_their_parts_and_a_notification_is_claimed_once,
            one_node_holds_the_alert_lease_and_the_processing_node_takes_it,
        );
    };
    (@each $fresh:path, $($scenario:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                let (store, _guard) = $fresh().await;
                $crate::conformance::$scenario(store).await;
            }
        )+
    };
}

/// A recognized play for `artist`, at `timestamp`.
pub fn entry(event_id: &str, timestamp: OffsetDateTime) -> NewEntry {
    NewEntry {
        event_id: event_id.to_owned(),
        entry_type: "audio.play".to_owned(),
        recognized: true,
        timestamp,
        received_at: datetime!(2026-11-20 12:00:00.000001 UTC),
        user_id: Some("fan_1".to_owned()),
        artist_id: Some("art_1".to_owned()),
        live_event_id: None,
        city: Some("lagos".to_owned()),
        genre: Some("afrobeats".to_owned()),
        envelope: format!(r#"{{"event_id":"{event_id}"}}"#),
    }
}

fn at() -> OffsetDateTime {
    datetime!(2026-11-20 11:30:00.123456 UTC)
}

fn seq_of(appended: &Appended) -> i64 {
    match appended {
        Appended::Accepted { seq } => *seq,
        Appended::Duplicate => panic!("expected a new entry, got a duplicate"),
    }
}

pub async fn appended_entries_read_back_in_seq_order(store: Arc<dyn Store>) {
    let mut third = entry("e-3", at());
    third.user_id = None;
    third.city = None;
    third.live_event_id = Some("live_1".to_owned());
    let entries = vec![entry("e-1", at()), entry("e-2", at() - Duration::days(40)), third];
    let appended = store.append_entries(&entries).await.expect("append");
    let seqs: Vec<i64> = appended.iter().map(seq_of).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "seqs increase in input order: {seqs:?}"
    );

    let read = store.read_after(0, 10).await.expect("read");
    assert_eq!(read.iter().map(|s| s.seq).collect::<Vec<_>>(), seqs);
    assert_eq!(read.into_iter().map(|s| s.entry).collect::<Vec<_>>(), entries);
    assert_eq!(store.log_stats().await.expect("stats").head_seq, seqs[2]);
    assert_eq!(store.head_seq().await.expect("head"), seqs[2]);
}

pub async fn an_event_id_is_stored_once(store: Arc<dyn Store>) {
    let first = store.append_entries(&[entry("e-1", at())]).await.expect("append");
    let again = store
        .append_entries(&[entry("e-1", at()), entry("e-2", at())])
        .await
        .expect("append");
    assert!(matches!(first[0], Appended::Accepted { .. }));
    assert_eq!(again[0], Appended::Duplicate);
    assert!(matches!(again[1], Appended::Accepted { .. }));
    assert_eq!(store.count_entries().await.expect("count"), 2);
}

pub async fn a_duplicate_in_another_month_is_still_a_duplicate(store: Arc<dyn Store>) {
    let january = entry("e-1", datetime!(2026-01-31 23:59:59 UTC));
    let february = entry("e-1", datetime!(2026-02-01 00:00:00 UTC));
    store
        .append_entries(std::slice::from_ref(&january))
        .await
        .expect("append");
    let again = store.append_entries(&[february]).await.expect("append");
    assert_eq!(again, vec![Appended::Duplicate]);
    let read = store.read_after(0, 10).await.expect("read");
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].entry, january, "the first copy is kept untouched");
}

pub async fn a_thousand_entries_append_in_one_call(store: Arc<dyn Store>) {
    let entries: Vec<NewEntry> = (0..1000)
        .map(|i| entry(&format!("bulk-{i}"), at() - Duration::hours(i % 900)))
        .collect();
    let appended = store.append_entries(&entries).await.expect("append");
    assert_eq!(
        appended
            .iter()
            .filter(|a| matches!(a, Appended::Accepted { .. }))
            .count(),
        1000
    );
    let replay = store.append_entries(&entries).await.expect("append");
    assert!(replay.iter().all(|a| *a == Appended::Duplicate));
    assert_eq!(store.count_entries().await.expect("count"), 1000);
}

pub async fn read_after_pages_by_cursor(store: Arc<dyn Store>) {
    let entries: Vec<NewEntry> = (0..7).map(|i| entry(&format!("p-{i}"), at())).collect();
    store.append_entries(&entries).await.expect("append");
    let mut cursor = 0;
    let mut seen = Vec::new();
    loop {
        let page = store.read_after(cursor, 3).await.expect("read");
        assert!(page.len() <= 3);
        let Some(last) = page.last() else { break };
        cursor = last.seq;
        seen.extend(page.into_iter().map(|s| s.entry.event_id));
    }
    assert_eq!(seen, (0..7).map(|i| format!("p-{i}")).collect::<Vec<_>>());
}

pub async fn log_stats_count_unrecognized_entries(store: Arc<dyn Store>) {
    assert_eq!(store.log_stats().await.expect("stats"), crate::LogStats::default());
    assert_eq!(store.head_seq().await.expect("head"), 0, "an empty log's head is 0");
    let mut odd = entry("u-1", at());
    odd.entry_type = "hologram.beamed".to_owned();
    odd.recognized = false;
    let mut odd_again = odd.clone();
    odd_again.event_id = "u-2".to_owned();
    let mut other = odd.clone();
    other.event_id = "u-3".to_owned();
    other.entry_type = "aura.glowed".to_owned();
    store
        .append_entries(&[entry("k-1", at()), odd, odd_again, other.clone()])
        .await
        .expect("append");
    let stats = store.log_stats().await.expect("stats");
    assert_eq!(stats.unrecognized, 3);
    assert_eq!(store.count_entries().await.expect("count"), 4);
    assert_eq!(
        store.unrecognized_types(10).await.expect("types"),
        vec![("hologram.beamed".to_owned(), 2), ("aura.glowed".to_owned(), 1)]
    );
    assert_eq!(store.unrecognized_types(1).await.expect("types").len(), 1);
    // A reading after more appends counts them too (a backend may count
    // only what came after its last reading's head).
    let mut later = other.clone();
    later.event_id = "u-4".to_owned();
    store
        .append_entries(&[later, entry("k-2", at())])
        .await
        .expect("append more");
    let again = store.log_stats().await.expect("stats again");
    assert_eq!(again.unrecognized, 4);
    assert_eq!(again.head_seq, store.head_seq().await.expect("head"));
    assert!(again.head_seq > stats.head_seq);
}

/// DESIGN.md's pitfall: a tailer that reads "everything after my cursor"
/// while writers commit must never skip an entry.
pub async fn concurrent_appends_become_visible_in_seq_order(store: Arc<dyn Store>) {
    const WRITERS: usize = 4;
    const BATCHES: usize = 25;
    let tailer = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut cursor = 0;
            let mut seen = BTreeSet::new();
            while seen.len() < WRITERS * BATCHES * 4 {
                let page = store.read_after(cursor, 50).await.expect("read");
                if page.is_empty() {
                    tokio::task::yield_now().await;
                }
                for stored in page {
                    cursor = stored.seq;
                    assert!(seen.insert(stored.entry.event_id), "read twice");
                }
            }
            seen
        })
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for b in 0..BATCHES {
                    let batch: Vec<NewEntry> = (0..4).map(|i| entry(&format!("w{w}-b{b}-{i}"), at())).collect();
                    store.append_entries(&batch).await.expect("append");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("writer");
    }
    let seen = tokio::time::timeout(std::time::Duration::from_secs(30), tailer)
        .await
        .expect("the tailer saw every entry: none was skipped")
        .expect("tailer");
    assert_eq!(seen.len(), WRITERS * BATCHES * 4);
}

/// Appends that overlap in time and share ids (a sender retrying while its
/// first delivery is still being committed) store each id once, and neither
/// deadlocks nor fails: ids are offered in opposite orders on purpose.
pub async fn concurrent_appends_of_the_same_ids_accept_each_once(store: Arc<dyn Store>) {
    const IDS: usize = 400;
    const WRITERS: usize = 4;
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut order: Vec<usize> = (0..IDS).collect();
                if w % 2 == 1 {
                    order.reverse();
                }
                let mut accepted = Vec::new();
                for chunk in order.chunks(50) {
                    let batch: Vec<NewEntry> = chunk.iter().map(|i| entry(&format!("shared-{i}"), at())).collect();
                    let fates = store.append_entries(&batch).await.expect("append");
                    for (entry, fate) in batch.iter().zip(fates) {
                        if matches!(fate, Appended::Accepted { .. }) {
                            accepted.push(entry.event_id.clone());
                        }
                    }
                }
                accepted
            })
        })
        .collect();
    let mut accepted = Vec::new();
    for writer in writers {
        accepted.extend(writer.await.expect("writer"));
    }
    let distinct: BTreeSet<&String> = accepted.iter().collect();
    assert_eq!(accepted.len(), IDS, "each id accepted exactly once across writers");
    assert_eq!(distinct.len(), IDS);
    assert_eq!(store.count_entries().await.expect("count"), IDS as i64);
}

/// An audit record of `action` on the pipeline.
fn audited(action: &str) -> AuditRecord {
    AuditRecord {
        id: 0,
        at: at(),
        actor: "user:1".to_owned(),
        action: action.to_owned(),
        subject: "pipeline".to_owned(),
        request_id: "req".to_owned(),
        detail: "{}".to_owned(),
    }
}

/// For scenarios about something else: the action records nothing.
fn unaudited<T>(_: &T) -> Option<AuditRecord> {
    None
}

/// A record both backends refuse to store (its detail is not JSON): what a
/// failing audit write looks like to the action that carries it.
fn refused(action: &str) -> AuditRecord {
    AuditRecord {
        detail: "not json".to_owned(),
        ..audited(action)
    }
}

fn new_user(email: &str, role: Role, plan: Plan) -> NewUser {
    NewUser {
        email: email.to_owned(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo".to_owned(),
        role,
        plan,
        artists: vec!["art_1".to_owned(), "art_2".to_owned()],
        live_events: vec!["live_1".to_owned()],
    }
}

pub async fn users_are_upserted_by_email(store: Arc<dyn Store>) {
    let created = store
        .upsert_user(&new_user("Ada@Example.com", Role::Artist, Plan::Pro))
        .await
        .expect("create");
    assert_eq!(created.email, "ada@example.com");
    assert_eq!(created.artists, ["art_1", "art_2"]);

    let mut changed = new_user("ada@example.COM", Role::Admin, Plan::Enterprise);
    changed.artists = vec!["art_3".to_owned()];
    changed.live_events.clear();
    let updated = store.upsert_user(&changed).await.expect("update");
    assert_eq!(updated.id, created.id, "same email, same user");
    assert_eq!((updated.role, updated.plan), (Role::Admin, Plan::Enterprise));
    assert_eq!(updated.artists, ["art_3"]);
    assert!(updated.live_events.is_empty());

    let credentials = store
        .user_credentials("ADA@example.com")
        .await
        .expect("read")
        .expect("found");
    assert_eq!(credentials.user, updated);
    assert!(credentials.password_hash.starts_with("$argon2id$"));
    assert!(
        store
            .user_credentials("nobody@example.com")
            .await
            .expect("read")
            .is_none()
    );
}

pub async fn sessions_expire_and_revoke(store: Arc<dyn Store>) {
    let user = store
        .upsert_user(&new_user("s@example.com", Role::Fan, Plan::Free))
        .await
        .expect("create");
    let now = at();
    let session = NewSession {
        token_hash: vec![7; 32],
        user_id: user.id,
        created_at: now,
        expires_at: now + Duration::hours(1),
    };
    store
        .create_session(&session, &audited("login"))
        .await
        .expect("create session");
    let found = store
        .session_user(&[7; 32], now)
        .await
        .expect("read")
        .expect("live session");
    assert_eq!(found.id, user.id);
    assert!(
        store
            .session_user(&[7; 32], now + Duration::hours(2))
            .await
            .expect("read")
            .is_none(),
        "expired"
    );
    assert!(
        store.session_user(&[8; 32], now).await.expect("read").is_none(),
        "unknown"
    );
    assert!(
        !store.revoke_session(&[8; 32], &unaudited).await.expect("revoke"),
        "unknown: nothing ended"
    );
    assert!(
        store.revoke_session(&[7; 32], &unaudited).await.expect("revoke"),
        "in force"
    );
    // An expired session still stored is ended all the same.
    let expired = NewSession {
        token_hash: vec![6; 32],
        expires_at: now - Duration::minutes(1),
        ..session
    };
    store
        .create_session(&expired, &audited("login"))
        .await
        .expect("create session");
    assert!(
        store.revoke_session(&[6; 32], &unaudited).await.expect("revoke"),
        "expired, still stored"
    );
    assert!(
        store.session_user(&[7; 32], now).await.expect("read").is_none(),
        "revoked"
    );
}

pub async fn a_user_sees_their_sessions_and_ends_the_others(store: Arc<dyn Store>) {
    let user = store
        .upsert_user(&new_user("many@example.com", Role::Fan, Plan::Pro))
        .await
        .expect("create");
    let other = store
        .upsert_user(&new_user("other@example.com", Role::Fan, Plan::Pro))
        .await
        .expect("create");
    let now = at();
    for (hash, owner, minutes, lifetime) in [
        (1_u8, user.id, 0, 60),
        (2, user.id, 5, 60),
        (3, user.id, 10, 1),
        (4, other.id, 0, 60),
    ] {
        let session = NewSession {
            token_hash: vec![hash; 32],
            user_id: owner,
            created_at: now + Duration::minutes(minutes),
            expires_at: now + Duration::minutes(minutes + lifetime),
        };
        store
            .create_session(&session, &audited("login"))
            .await
            .expect("session");
    }
    let later = now + Duration::minutes(20);
    let shown = store.sessions_of(user.id, later).await.expect("sessions");
    assert_eq!(
        shown.iter().map(|s| s.token_hash[0]).collect::<Vec<_>>(),
        vec![2, 1],
        "newest first, the expired one left out, nobody else's"
    );
    assert_eq!(shown[0].created_at, now + Duration::minutes(5));
    assert_eq!(shown[0].expires_at, now + Duration::minutes(65));

    let mut ended = store
        .revoke_other_sessions(user.id, &[2; 32], &audited("sessions.revoked"))
        .await
        .expect("revoke");
    ended.sort();
    assert_eq!(ended, vec![vec![1; 32], vec![3; 32]]);
    assert!(store.session_user(&[1; 32], later).await.expect("read").is_none());
    assert_eq!(
        store.session_user(&[2; 32], later).await.expect("read").map(|u| u.id),
        Some(user.id)
    );
    assert!(
        store.session_user(&[4; 32], now).await.expect("read").is_some(),
        "another user's stays"
    );
    assert!(
        store
            .revoke_other_sessions(user.id, &[2; 32], &audited("sessions.revoked"))
            .await
            .expect("again")
            .is_empty()
    );
}

fn cell(grain: Grain, bucket: i64, artist: &str, city: &str) -> CellKey {
    CellKey {
        grain,
        bucket,
        artist: artist.to_owned(),
        city: city.to_owned(),
        genre: "jazz".to_owned(),
        live_event: String::new(),
    }
}

fn plays(n: i64) -> Kpis {
    Kpis {
        plays: n,
        engagement_tenths: 10 * n,
        ..Kpis::default()
    }
}

fn fan_day(artist: &str, fan: &str) -> FanDayKey {
    FanDayKey {
        day: 20_412,
        artist: artist.to_owned(),
        fan: fan.to_owned(),
        city: String::new(),
        genre: "jazz".to_owned(),
    }
}

pub async fn batches_add_to_cells_and_fan_days_and_move_the_cursor(store: Arc<dyn Store>) {
    assert_eq!(store.pipeline_state().await.expect("state"), PipelineState::default());
    let hour = 489_900;
    let first = ProcessedBatch {
        from_seq: 0,
        to_seq: 3,
        cells: vec![
            (cell(Grain::Hour, hour, "art_1", "oslo"), plays(2)),
            (cell(Grain::Hour, hour, "", "oslo"), plays(1)),
            (cell(Grain::Day, 20_412, "art_1", "oslo"), plays(2)),
        ],
        fan_days: vec![(
            fan_day("art_1", "fan_1"),
            FanDay {
                by_tier: [0, 2, 0, 0, 0],
                influence: 0,
            },
        )],
        dead_letters: Vec::new(),
        revenue_gross: 5,
        names: Vec::new(),
    };
    store.apply_batch(&first, at()).await.expect("first batch");
    let second = ProcessedBatch {
        from_seq: 3,
        to_seq: 5,
        cells: vec![
            (cell(Grain::Hour, hour, "art_1", "oslo"), plays(1)),
            (cell(Grain::Hour, hour + 1, "art_1", "oslo"), plays(1)),
        ],
        fan_days: vec![(
            fan_day("art_1", "fan_1"),
            FanDay {
                by_tier: [1, 0, 1, 0, 0],
                influence: 1,
            },
        )],
        dead_letters: Vec::new(),
        revenue_gross: 7,
        names: Vec::new(),
    };
    store.apply_batch(&second, at()).await.expect("second batch");

    let mut hours = store.kpi_cells(Grain::Hour, hour, i64::MAX).await.expect("cells");
    hours.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        hours,
        vec![
            (cell(Grain::Hour, hour, "", "oslo"), plays(1)),
            (cell(Grain::Hour, hour, "art_1", "oslo"), plays(3)),
            (cell(Grain::Hour, hour + 1, "art_1", "oslo"), plays(1)),
        ]
    );
    assert_eq!(
        store
            .kpi_cells(Grain::Hour, hour + 1, i64::MAX)
            .await
            .expect("cells")
            .len(),
        1
    );
    assert_eq!(
        store.kpi_cells(Grain::Hour, hour, hour + 1).await.expect("cells").len(),
        2,
        "the end is excluded"
    );
    assert_eq!(store.kpi_cells(Grain::Day, 0, i64::MAX).await.expect("cells").len(), 1);
    assert_eq!(
        store.fan_days(0, i64::MAX).await.expect("fan days"),
        vec![(
            fan_day("art_1", "fan_1"),
            FanDay {
                by_tier: [1, 2, 1, 0, 0],
                influence: 1,
            }
        )]
    );
    assert!(store.fan_days(20_413, i64::MAX).await.expect("fan days").is_empty());
    assert!(
        store.fan_days(0, 20_412).await.expect("fan days").is_empty(),
        "the end is excluded"
    );
    let state = store.pipeline_state().await.expect("state");
    assert_eq!((state.processed_seq, state.revenue_gross), (5, 12));
}

/// The SQL sums, however the statement reads the cells (a bucket range, or
/// one artist's cells bucket by bucket), are the sums of the cells they
/// select: for every filter, over empty, short, gapped and long ranges.
pub async fn sums_by_bucket_and_by_artist_are_the_sums_of_the_cells(store: Arc<dyn Store>) {
    let hour = 489_900;
    assert_eq!(store.first_bucket(Grain::Hour).await.expect("first bucket"), None);
    let mut cells = Vec::new();
    for (offset, artist, city, live_event, n) in [
        (0, "art_1", "oslo", "", 1),
        (0, "art_1", "lagos", "", 2),
        (0, "art_2", "oslo", "", 4),
        (1, "art_1", "oslo", "live_1", 8),
        (5, "art_1", "oslo", "", 16),
        (5, "art_2", "lagos", "live_1", 32),
        (700, "art_1", "lagos", "", 64),
        (700, "", "oslo", "", 128),
    ] {
        let mut key = cell(Grain::Hour, hour + offset, artist, city);
        key.live_event = live_event.to_owned();
        cells.push((key, plays(n)));
    }
    let batch = ProcessedBatch {
        from_seq: 0,
        to_seq: 1,
        cells: cells.clone(),
        ..ProcessedBatch::default()
    };
    store.apply_batch(&batch, at()).await.expect("batch");
    assert_eq!(
        store.first_bucket(Grain::Hour).await.expect("first bucket"),
        Some(hour),
        "the oldest hour held"
    );
    assert_eq!(store.first_bucket(Grain::Day).await.expect("first bucket"), None);

    let filters = [
        CellFilter::default(),
        CellFilter {
            artist: Some("art_1".to_owned()),
            ..CellFilter::default()
        },
        CellFilter {
            artist: Some("art_1".to_owned()),
            city: Some("oslo".to_owned()),
            ..CellFilter::default()
        },
        CellFilter {
            artist: Some("art_2".to_owned()),
            genre: Some("jazz".to_owned()),
            ..CellFilter::default()
        },
        CellFilter {
            artist: Some("art_1".to_owned()),
            live_event: Some("live_1".to_owned()),
            ..CellFilter::default()
        },
        CellFilter {
            city: Some("lagos".to_owned()),
            ..CellFilter::default()
        },
        CellFilter {
            artist: Some("nobody".to_owned()),
            ..CellFilter::default()
        },
    ];
    let selects = |key: &CellKey, filter: &CellFilter| {
        [
            (&filter.artist, &key.artist),
            (&filter.city, &key.city),
            (&filter.genre, &key.genre),
            (&filter.live_event, &key.live_event),
        ]
        .into_iter()
        .all(|(wanted, value)| wanted.as_ref().is_none_or(|wanted| wanted == value))
    };
    for filter in &filters {
        for (from, to) in [
            (hour, hour),
            (hour + 1, hour),
            (hour, hour + 1),
            (hour, hour + 6),
            (hour + 2, hour + 5),
            (hour + 1, hour + 701),
            (hour - 10, hour + 10_000),
            // Longer than any seek: scanned.
            (hour - MAX_SEEKED_BUCKETS, hour + 701),
        ] {
            let mut by_bucket: BTreeMap<i64, Kpis> = BTreeMap::new();
            let mut by_artist: BTreeMap<String, Kpis> = BTreeMap::new();
            for (key, kpis) in cells.iter().filter(|(key, _)| (from..to).contains(&key.bucket)) {
                if selects(key, filter) {
                    *by_bucket.entry(key.bucket).or_default() += *kpis;
                    if !key.artist.is_empty() {
                        *by_artist.entry(key.artist.clone()).or_default() += *kpis;
                    }
                }
            }
            let sums = store
                .sum_cells_by_bucket(Grain::Hour, from, to, filter)
                .await
                .expect("sums by bucket");
            assert_eq!(
                sums,
                by_bucket.into_iter().collect::<Vec<_>>(),
                "by bucket, {filter:?} over {from}..{to}"
            );
            let mut sums = store
                .sum_cells_by_artist(Grain::Hour, from, to, filter)
                .await
                .expect("sums by artist");
            sums.sort_by(|a, b| a.0.cmp(&b.0));
            assert_eq!(
                sums,
                by_artist.into_iter().collect::<Vec<_>>(),
                "by artist, {filter:?} over {from}..{to}"
            );
        }
    }
    // A later batch reaching further back moves the first bucket held.
    let older = ProcessedBatch {
        from_seq: 1,
        to_seq: 2,
        cells: vec![(cell(Grain::Hour, hour - 30, "art_1", "oslo"), plays(1))],
        ..ProcessedBatch::default()
    };
    store.apply_batch(&older, at()).await.expect("older batch");
    assert_eq!(
        store.first_bucket(Grain::Hour).await.expect("first bucket"),
        Some(hour - 30)
    );
}

/// A cell sums to the largest integer exactly, and a write that would take
/// it past fails whole: nothing of its batch is written, and the cell is
/// never stored as anything but an integer.
pub async fn a_cell_that_would_overflow_fails_its_batch(store: Arc<dyn Store>) {
    let revenue = |revenue_minor| Kpis {
        revenue_minor,
        revenue_entries: 1,
        ..Kpis::default()
    };
    let key = cell(Grain::Day, 20_412, "art_1", "oslo");
    let batch = |from_seq, to_seq, revenue_minor| ProcessedBatch {
        from_seq,
        to_seq,
        cells: vec![(key.clone(), revenue(revenue_minor))],
        revenue_gross: revenue_minor,
        ..ProcessedBatch::default()
    };
    store
        .apply_batch(&batch(0, 1, i64::MAX - 1), at())
        .await
        .expect("first");
    store
        .apply_batch(&batch(1, 2, 1), at())
        .await
        .expect("to the largest integer");
    let overflowing = store.apply_batch(&batch(2, 3, 1), at()).await;
    assert!(overflowing.is_err(), "{overflowing:?}");
    let cells = store.kpi_cells(Grain::Day, 0, i64::MAX).await.expect("cells read back");
    assert_eq!(
        cells,
        vec![(
            key.clone(),
            Kpis {
                revenue_entries: 2,
                ..revenue(i64::MAX)
            }
        )]
    );
    let state = store.pipeline_state().await.expect("state");
    assert_eq!((state.processed_seq, state.revenue_gross), (2, i64::MAX));
}

pub async fn a_batch_from_a_stale_cursor_changes_nothing(store: Arc<dyn Store>) {
    let batch = ProcessedBatch {
        from_seq: 0,
        to_seq: 2,
        cells: vec![(cell(Grain::Day, 1, "art_1", ""), plays(1))],
        ..ProcessedBatch::default()
    };
    store.apply_batch(&batch, at()).await.expect("first");
    // The same batch again, as a second processor would send it.
    let again = store.apply_batch(&batch, at()).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert_eq!(
        store.kpi_cells(Grain::Day, 0, i64::MAX).await.expect("cells"),
        vec![(cell(Grain::Day, 1, "art_1", ""), plays(1))],
        "counted once"
    );
    assert_eq!(store.pipeline_state().await.expect("state").processed_seq, 2);
}

pub async fn the_pause_flag_persists_and_a_reset_keeps_it(store: Arc<dyn Store>) {
    store
        .set_paused(true, &audited("pipeline.paused"))
        .await
        .expect("pause");
    let batch = ProcessedBatch {
        from_seq: 0,
        to_seq: 9,
        cells: vec![(cell(Grain::Day, 1, "art_1", ""), plays(1))],
        fan_days: vec![(fan_day("art_1", ""), FanDay::default())],
        dead_letters: vec![dead_letter(4, DeadLetterState::Dead)],
        revenue_gross: 3,
        names: Vec::new(),
    };
    store.apply_batch(&batch, at()).await.expect("apply");
    store.reset_derived().await.expect("reset");
    assert_eq!(
        store.pipeline_state().await.expect("state"),
        PipelineState {
            processed_seq: 0,
            // Batch numbers go on: no node may take a rebuilt batch for one it followed.
            batches: 1,
            paused: true,
            revenue_gross: 0,
        }
    );
    assert!(
        store
            .kpi_cells(Grain::Day, i64::MIN, i64::MAX)
            .await
            .expect("cells")
            .is_empty()
    );
    assert!(store.fan_days(i64::MIN, i64::MAX).await.expect("fan days").is_empty());
    assert_eq!(store.open_dead_letters().await.expect("count"), 0);
    store
        .set_paused(false, &audited("pipeline.resumed"))
        .await
        .expect("resume");
    assert!(!store.pipeline_state().await.expect("state").paused);
}

pub async fn a_bulk_load_commits_only_at_its_end(store: Arc<dyn Store>) {
    let cells = vec![
        (cell(Grain::Hour, 489_900, "art_1", "oslo"), plays(2)),
        (cell(Grain::Hour, 489_900, "art_2", "oslo"), plays(1)),
    ];
    let days = vec![(
        fan_day("art_1", "fan_1"),
        FanDay {
            by_tier: [0, 2, 0, 0, 0],
            influence: 1,
        },
    )];
    let load = |parts: Vec<DerivedPart>| {
        let store = store.clone();
        async move {
            let (sender, receiver) = tokio::sync::mpsc::channel(1);
            let sending = tokio::spawn(async move {
                for part in parts {
                    let _ = sender.send(part).await;
                }
            });
            let loaded = store.load_derived(9, 40, receiver).await;
            sending.await.expect("sender");
            loaded
        }
    };

    // A sender gone before the end leaves everything as it was.
    let cut_short = load(vec![DerivedPart::Cells(cells.clone())]).await;
    assert!(cut_short.is_err(), "{cut_short:?}");
    assert!(
        store
            .kpi_cells(Grain::Hour, i64::MIN, i64::MAX)
            .await
            .expect("cells")
            .is_empty()
    );
    assert_eq!(store.pipeline_state().await.expect("state").processed_seq, 0);

    let parts = vec![
        DerivedPart::Cells(cells[..1].to_vec()),
        DerivedPart::Cells(cells[1..].to_vec()),
        DerivedPart::FanDays(days.clone()),
        DerivedPart::DeadLetters(vec![dead_letter(4, DeadLetterState::Dead)]),
        DerivedPart::End,
    ];
    load(parts.clone()).await.expect("load");
    let mut loaded = store.kpi_cells(Grain::Hour, i64::MIN, i64::MAX).await.expect("cells");
    loaded.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(loaded, cells);
    assert_eq!(store.fan_days(i64::MIN, i64::MAX).await.expect("fan days"), days);
    assert_eq!(store.open_dead_letters().await.expect("dead letters"), 1);
    let state = store.pipeline_state().await.expect("state");
    assert_eq!((state.processed_seq, state.revenue_gross), (9, 40));

    // Only onto a cursor at 0: a second load would count everything twice.
    let again = load(parts).await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert_eq!(
        store
            .kpi_cells(Grain::Hour, i64::MIN, i64::MAX)
            .await
            .expect("cells")
            .len(),
        2
    );
}

pub async fn dna_mutations_read_back_from_an_instant_in_order(store: Arc<dyn Store>) {
    let of = |domain: &str, range: &str, artist: &str, new: f64, minutes: i64| DnaMutation {
        artist: artist.to_owned(),
        domain: domain.to_owned(),
        range: range.to_owned(),
        old: 10.5,
        new,
        at: at() + Duration::minutes(minutes),
    };
    let mutation = |artist: &str, new: f64, minutes: i64| of("a", "7d", artist, new, minutes);
    store
        .record_mutations(&[
            mutation("art_2", 30.0, 5),
            of("c", "7d", "art_1", 40.0, 1),
            mutation("art_1", 16.25, 0),
            of("a", "all", "art_1", 50.0, 2),
            mutation("art_3", 22.0, 9),
        ])
        .await
        .expect("record");
    store.record_mutations(&[]).await.expect("nothing to record");
    let read = |domain: &'static str, range: &'static str, since: i64, until: i64| {
        let store = store.clone();
        async move {
            store
                .mutations_of(
                    domain,
                    range,
                    at() + Duration::minutes(since),
                    at() + Duration::minutes(until),
                )
                .await
                .expect("read")
        }
    };
    assert_eq!(
        read("a", "7d", 0, 9).await,
        vec![
            mutation("art_1", 16.25, 0),
            mutation("art_2", 30.0, 5),
            mutation("art_3", 22.0, 9)
        ],
        "one domain and range, both ends included"
    );
    assert_eq!(read("a", "7d", 1, 8).await, vec![mutation("art_2", 30.0, 5)]);
    assert_eq!(read("c", "7d", 0, 9).await, vec![of("c", "7d", "art_1", 40.0, 1)]);
    assert_eq!(read("a", "all", 0, 9).await, vec![of("a", "all", "art_1", 50.0, 2)]);
    assert!(read("g", "7d", 0, 9).await.is_empty());
    // The clock's instants have nanoseconds; the stores keep microseconds.
    let until = at() + Duration::minutes(9) + Duration::nanoseconds(999);
    assert_eq!(
        store
            .mutations_of("a", "7d", at() + Duration::minutes(6), until)
            .await
            .expect("read"),
        vec![mutation("art_3", 22.0, 9)],
        "an end between two microseconds"
    );
}

pub async fn dna_mutations_pruned_oldest_first_one_board_at_a_time(store: Arc<dyn Store>) {
    let of = |domain: &str, range: &str, artist: &str, minutes: i64| DnaMutation {
        artist: artist.to_owned(),
        domain: domain.to_owned(),
        range: range.to_owned(),
        old: 10.0,
        new: 20.0,
        at: at() + Duration::minutes(minutes),
    };
    store
        .record_mutations(&[
            of("a", "7d", "art_3", 3),
            of("a", "7d", "art_1", 1),
            of("a", "7d", "art_2", 2),
            of("a", "7d", "art_5", 5),
            of("a", "30d", "art_1", 1),
            of("c", "7d", "art_1", 1),
        ])
        .await
        .expect("record");
    let left = |domain: &'static str, range: &'static str| {
        let store = store.clone();
        async move {
            store
                .mutations_of(domain, range, at(), at() + Duration::minutes(10))
                .await
                .expect("read")
                .into_iter()
                .map(|m| m.artist)
                .collect::<Vec<_>>()
        }
    };
    let before = at() + Duration::minutes(5);
    let prune = |limit: u32| store.prune_mutations("a", "7d", before, limit);
    assert_eq!(prune(2).await.expect("prune"), 2, "a chunk at most");
    assert_eq!(left("a", "7d").await, ["art_3", "art_5"], "the oldest went first");
    assert_eq!(prune(2).await.expect("prune"), 1);
    assert_eq!(prune(2).await.expect("prune"), 0, "nothing before the instant is left");
    assert_eq!(left("a", "7d").await, ["art_5"], "the instant itself is kept");
    assert_eq!(left("a", "30d").await, ["art_1"], "other ranges untouched");
    assert_eq!(left("c", "7d").await, ["art_1"], "other domains untouched");
}

fn dead_letter(seq: i64, state: DeadLetterState) -> DeadLetter {
    DeadLetter {
        seq,
        event_id: format!("e-{seq}"),
        reason: "no exchange rate for NOK".to_owned(),
        attempts: 1,
        state,
        first_failed_at: at(),
        last_failed_at: at(),
        next_attempt_at: (state == DeadLetterState::Retrying).then(|| at() + Duration::seconds(1)),
    }
}

pub async fn dead_letters_retry_replay_and_resolve(store: Arc<dyn Store>) {
    let entries: Vec<NewEntry> = (1..=3).map(|i| entry(&format!("e-{i}"), at())).collect();
    store.append_entries(&entries).await.expect("append");
    let batch = ProcessedBatch {
        from_seq: 0,
        to_seq: 3,
        dead_letters: vec![
            dead_letter(1, DeadLetterState::Retrying),
            dead_letter(3, DeadLetterState::Dead),
        ],
        ..ProcessedBatch::default()
    };
    store.apply_batch(&batch, at()).await.expect("apply");
    assert_eq!(store.open_dead_letters().await.expect("count"), 2);
    assert!(
        store.due_dead_letters(at(), 10).await.expect("due").is_empty(),
        "not yet"
    );
    let due = store
        .due_dead_letters(at() + Duration::seconds(1), 10)
        .await
        .expect("due");
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].0, dead_letter(1, DeadLetterState::Retrying));
    assert_eq!(due[0].1.entry, entries[0], "with its entry from the log");

    // Retried successfully: resolved in a batch that leaves the cursor where it is.
    let resolved = ProcessedBatch {
        from_seq: 3,
        to_seq: 3,
        cells: vec![(cell(Grain::Day, 1, "art_1", ""), plays(1))],
        dead_letters: vec![DeadLetter {
            state: DeadLetterState::Replayed,
            next_attempt_at: None,
            ..dead_letter(1, DeadLetterState::Retrying)
        }],
        ..ProcessedBatch::default()
    };
    store.apply_batch(&resolved, at()).await.expect("resolve");
    assert_eq!(store.open_dead_letters().await.expect("count"), 1);
    let listed = store.dead_letters(0, 10, false).await.expect("list");
    assert_eq!(listed, vec![dead_letter(3, DeadLetterState::Dead)]);
    assert_eq!(
        store.newest_dead_letters(10).await.expect("newest"),
        listed,
        "replayed ones left out"
    );
    assert_eq!(store.dead_letters(0, 10, true).await.expect("list").len(), 2);
    assert_eq!(
        store.dead_letters(1, 10, true).await.expect("list").len(),
        1,
        "after a cursor"
    );

    // An operator replays: the dead one is due again with fresh attempts; the resolved one is left alone.
    let later = at() + Duration::minutes(5);
    assert_eq!(
        store
            .replay_dead_letters(None, later, &unaudited)
            .await
            .expect("replay"),
        1
    );
    let due = store.due_dead_letters(later, 10).await.expect("due");
    assert_eq!(due.len(), 1);
    assert_eq!(
        (due[0].0.seq, due[0].0.attempts, due[0].0.state),
        (3, 0, DeadLetterState::Retrying)
    );
    assert_eq!(
        store
            .replay_dead_letters(Some(1), later, &unaudited)
            .await
            .expect("replay"),
        0
    );
}

pub async fn signup_never_changes_an_existing_account(store: Arc<dyn Store>) {
    let mut fresh = new_user("New@Example.com", Role::Fan, Plan::Free);
    fresh.artists.clear();
    let created = store
        .create_user(&fresh, &unaudited)
        .await
        .expect("create")
        .expect("new email");
    assert_eq!((created.email.as_str(), created.plan), ("new@example.com", Plan::Free));
    assert!(created.artists.is_empty());
    assert_eq!(store.user_by_id(created.id).await.expect("read"), Some(created.clone()));

    let again = new_user("NEW@example.com", Role::Admin, Plan::Enterprise);
    assert_eq!(
        store.create_user(&again, &unaudited).await.expect("create"),
        None,
        "email taken"
    );
    let kept = store.user_by_id(created.id).await.expect("read").expect("found");
    assert_eq!((kept.role, kept.plan), (Role::Fan, Plan::Free));
    assert_eq!(store.user_by_id(created.id + 1000).await.expect("read"), None);
}

pub async fn external_identities_find_link_or_create_users(store: Arc<dyn Store>) {
    let made = store.external_user("sub-1", "Fan@Example.com").await.expect("create");
    assert_eq!((made.role, made.plan), (Role::Fan, Plan::Free));
    assert_eq!(made.email, "fan@example.com");
    let again = store.external_user("sub-1", "changed@example.com").await.expect("find");
    assert_eq!(again.id, made.id, "found by subject, whatever the email says now");

    store
        .upsert_user(&new_user("admin@example.com", Role::Admin, Plan::Enterprise))
        .await
        .expect("create");
    let takeover = store.external_user("sub-2", "ADMIN@example.com").await;
    assert!(
        matches!(takeover, Err(StoreError::Conflict(_))),
        "an account is never linked by email alone: {takeover:?}"
    );
    let other = store.external_user("sub-3", "fan@example.com").await;
    assert!(matches!(other, Err(StoreError::Conflict(_))), "{other:?}");
    let credentials = store
        .user_credentials("fan@example.com")
        .await
        .expect("read")
        .expect("found");
    assert!(credentials.password_hash.is_empty(), "no password to sign in with");
}

pub async fn api_keys_are_found_by_hash_until_revoked(store: Arc<dyn Store>) {
    let owner = store
        .upsert_user(&new_user("dev@example.com", Role::Developer, Plan::Pro))
        .await
        .expect("create");
    let other = store
        .upsert_user(&new_user("else@example.com", Role::Fan, Plan::Pro))
        .await
        .expect("create");
    let new_key = |name: &str, hash: u8| NewApiKey {
        user_id: owner.id,
        name: name.to_owned(),
        key_hash: vec![hash; 32],
        prefix: format!("ck_{hash}"),
        created_at: at(),
    };
    let first = store
        .create_api_key(&new_key("ci", 1), &unaudited)
        .await
        .expect("create");
    let second = store
        .create_api_key(&new_key("laptop", 2), &unaudited)
        .await
        .expect("create");
    assert!(matches!(
        store.create_api_key(&new_key("same hash", 2), &unaudited).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store.api_keys(owner.id).await.expect("list"),
        [first.clone(), second.clone()]
    );
    let (user, key_id) = store.api_key_user(&[1; 32]).await.expect("read").expect("live key");
    assert_eq!((user.id, key_id), (owner.id, first.id));

    assert_eq!(
        store
            .revoke_api_key(other.id, first.id, at(), &unaudited)
            .await
            .expect("revoke"),
        None,
        "only its owner revokes a key"
    );
    let revoked = store
        .revoke_api_key(owner.id, first.id, at() + Duration::hours(1), &unaudited)
        .await
        .expect("revoke")
        .expect("found");
    assert_eq!(revoked.revoked_at, Some(at() + Duration::hours(1)));
    let twice = store
        .revoke_api_key(owner.id, first.id, at() + Duration::hours(2), &unaudited)
        .await
        .expect("revoke")
        .expect("found");
    assert_eq!(twice.revoked_at, revoked.revoked_at, "the first revocation stands");
    assert_eq!(store.api_key_user(&[1; 32]).await.expect("read"), None);
    assert!(store.api_key_user(&[2; 32]).await.expect("read").is_some());
    let listed: Vec<ApiKey> = store.api_keys(owner.id).await.expect("list");
    assert_eq!(listed[0].revoked_at, revoked.revoked_at);

    // At most MAX_API_KEYS in force: one is (the second), the revoked one
    // does not count, and another account's keys are its own.
    for hash in 3..(3 + MAX_API_KEYS as u8 - 1) {
        store
            .create_api_key(&new_key("more", hash), &unaudited)
            .await
            .expect("room for it");
    }
    let refused = store.create_api_key(&new_key("one too many", 200), &unaudited).await;
    assert!(matches!(refused, Err(StoreError::LimitReached(_))), "{refused:?}");
    assert_eq!(
        store.api_key_user(&[200; 32]).await.expect("read"),
        None,
        "nothing stored"
    );
    let elsewhere = NewApiKey {
        user_id: other.id,
        ..new_key("theirs", 201)
    };
    store
        .create_api_key(&elsewhere, &unaudited)
        .await
        .expect("another account's first key");
    store
        .revoke_api_key(owner.id, second.id, at(), &unaudited)
        .await
        .expect("revoke")
        .expect("found");
    store
        .create_api_key(&new_key("after a revoke", 202), &unaudited)
        .await
        .expect("room again");
}

pub async fn stripe_events_apply_once_in_order_and_wait_for_a_link(store: Arc<dyn Store>) {
    let user = store
        .upsert_user(&new_user("buyer@example.com", Role::Fan, Plan::Free))
        .await
        .expect("create");
    let change = |id: &str, order: i64, link: Option<i64>, plan: Option<Plan>| StripeChange {
        event_id: id.to_owned(),
        customer_id: "cus_1".to_owned(),
        order,
        link_user: link,
        plan,
        received_at: at(),
    };
    // Events for a customer nobody is linked to yet are kept.
    let early = store
        .record_stripe_event(&change("evt_updated", 20, None, Some(Plan::Pro)), &unaudited)
        .await
        .expect("record");
    assert_eq!(early, StripeOutcome::Pending);
    let older = store
        .record_stripe_event(&change("evt_created", 10, None, Some(Plan::Basic)), &unaudited)
        .await
        .expect("record");
    assert_eq!(older, StripeOutcome::Pending);
    // The link applies them in order: the newest state wins.
    let linked = store
        .record_stripe_event(&change("evt_checkout", 5, Some(user.id), None), &unaudited)
        .await
        .expect("record");
    assert_eq!(
        linked,
        StripeOutcome::Applied {
            user_id: user.id,
            plan: Plan::Pro,
            changed: true
        }
    );
    assert_eq!(
        store.user_by_id(user.id).await.expect("read").map(|u| u.plan),
        Some(Plan::Pro)
    );

    let replay = store
        .record_stripe_event(&change("evt_updated", 20, None, Some(Plan::Enterprise)), &unaudited)
        .await
        .expect("record");
    assert_eq!(replay, StripeOutcome::Duplicate);
    let stale = store
        .record_stripe_event(&change("evt_stale", 15, None, Some(Plan::Free)), &unaudited)
        .await
        .expect("record");
    assert_eq!(
        stale,
        StripeOutcome::Applied {
            user_id: user.id,
            plan: Plan::Pro,
            changed: false
        },
        "an older state arriving late changes nothing"
    );
    let deleted = store
        .record_stripe_event(&change("evt_deleted", 30, None, Some(Plan::Free)), &unaudited)
        .await
        .expect("record");
    assert_eq!(
        deleted,
        StripeOutcome::Applied {
            user_id: user.id,
            plan: Plan::Free,
            changed: true
        }
    );
    let nobody = store
        .record_stripe_event(
            &StripeChange {
                customer_id: "cus_2".to_owned(),
                ..change("evt_other", 40, Some(user.id + 1000), Some(Plan::Pro))
            },
            &unaudited,
        )
        .await
        .expect("record");
    assert_eq!(nobody, StripeOutcome::Pending, "a link to nobody links nothing");
}

pub async fn audit_records_filter_and_page_newest_first(store: Arc<dyn Store>) {
    let record = |minute: i64, actor: &str, action: &str| AuditRecord {
        id: 0,
        at: at() + Duration::minutes(minute),
        actor: actor.to_owned(),
        action: action.to_owned(),
        subject: "user:1".to_owned(),
        request_id: format!("req-{minute}"),
        detail: format!("{{\"minute\": {minute}}}"),
    };
    store
        .append_audit(&[record(0, "user:1", "login"), record(1, "user:2", "login.failed")])
        .await
        .expect("append");
    store
        .append_audit(&[record(2, "user:1", "login")])
        .await
        .expect("append");
    store.append_audit(&[]).await.expect("nothing to append");

    let all = store
        .audit_records(&AuditQuery {
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .expect("read");
    let minutes: Vec<String> = all.iter().map(|r| r.request_id.clone()).collect();
    assert_eq!(minutes, ["req-2", "req-1", "req-0"]);
    let detail: serde_json::Value = serde_json::from_str(&all[0].detail).expect("JSON detail");
    assert_eq!(detail, serde_json::json!({"minute": 2}));
    assert_eq!(all[0].at, at() + Duration::minutes(2));

    let logins = store
        .audit_records(&AuditQuery {
            actor: Some("user:1".to_owned()),
            action: Some("login".to_owned()),
            subject: Some("user:1".to_owned()),
            limit: 1,
            ..AuditQuery::default()
        })
        .await
        .expect("read");
    assert_eq!(logins.len(), 1);
    assert_eq!(logins[0].request_id, "req-2");
    let next = store
        .audit_records(&AuditQuery {
            actor: Some("user:1".to_owned()),
            before_id: Some(logins[0].id),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .expect("read");
    assert_eq!(
        next.iter().map(|r| r.request_id.as_str()).collect::<Vec<_>>(),
        ["req-0"]
    );
    let since = store
        .audit_records(&AuditQuery {
            since: Some(at() + Duration::minutes(1)),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .expect("read");
    assert_eq!(since.len(), 2);
}

pub async fn concurrent_stripe_events_leave_the_newest_plan(store: Arc<dyn Store>) {
    let user = store
        .upsert_user(&new_user("racer@example.com", Role::Fan, Plan::Free))
        .await
        .expect("create");
    let link = StripeChange {
        event_id: "evt_link".to_owned(),
        customer_id: "cus_race".to_owned(),
        order: 0,
        link_user: Some(user.id),
        plan: None,
        received_at: at(),
    };
    store.record_stripe_event(&link, &unaudited).await.expect("link");
    let plans = [Plan::Basic, Plan::Pro, Plan::Enterprise, Plan::Free];
    // 40 events at once, in a scrambled order; the one of order 40 is Basic.
    let tasks: Vec<_> = (1..=40_i64)
        .map(|i| {
            let store = store.clone();
            let order = (i * 17) % 41;
            let plan = if order == 40 {
                Plan::Basic
            } else {
                plans[(order % 4) as usize]
            };
            tokio::spawn(async move {
                store
                    .record_stripe_event(
                        &StripeChange {
                            event_id: format!("evt_{order}"),
                            customer_id: "cus_race".to_owned(),
                            order,
                            link_user: None,
                            plan: Some(plan),
                            received_at: at(),
                        },
                        &unaudited,
                    )
                    .await
                    .expect("record")
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("joined");
    }
    let plan = store.user_by_id(user.id).await.expect("read").expect("user").plan;
    assert_eq!(
        plan,
        Plan::Basic,
        "the plan of the newest event, whatever order they committed in"
    );
}

async fn actions_audited(store: &Arc<dyn Store>) -> Vec<(String, String)> {
    let records = store
        .audit_records(&AuditQuery {
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .expect("read the audit log");
    let mut actions: Vec<_> = records.into_iter().map(|r| (r.action, r.subject)).collect();
    actions.sort();
    actions
}

pub async fn audited_actions_write_their_record_with_them(store: Arc<dyn Store>) {
    let created = store
        .create_user(&new_user("new@example.com", Role::Fan, Plan::Free), &|id: &i64| {
            Some(AuditRecord {
                subject: format!("user:{id}"),
                ..audited("signup")
            })
        })
        .await
        .expect("sign up")
        .expect("a new email");
    let key = NewApiKey {
        user_id: created.id,
        name: "ci".to_owned(),
        key_hash: vec![3; 32],
        prefix: "ck_3".to_owned(),
        created_at: at(),
    };
    let by_id = |action: &'static str| {
        move |key: &ApiKey| {
            Some(AuditRecord {
                subject: format!("api_key:{}", key.id),
                ..audited(action)
            })
        }
    };
    let stored = store
        .create_api_key(&key, &by_id("api_key.created"))
        .await
        .expect("create a key");
    store
        .revoke_api_key(created.id, stored.id, at(), &by_id("api_key.revoked"))
        .await
        .expect("revoke")
        .expect("the key");
    // Revoking it again keeps the first revocation, and records nothing.
    let again = store
        .revoke_api_key(
            created.id,
            stored.id,
            at() + Duration::hours(1),
            &by_id("api_key.revoked"),
        )
        .await
        .expect("revoke again")
        .expect("the key");
    assert_eq!(again.revoked_at, Some(at()));
    // Revoking a key the user does not have does nothing, and records nothing.
    let nothing = store
        .revoke_api_key(created.id, stored.id + 100, at(), &by_id("api_key.revoked"))
        .await
        .expect("revoke");
    assert_eq!(nothing, None);
    store
        .set_paused(true, &audited("pipeline.paused"))
        .await
        .expect("pause");
    // Replays are recorded with their count; one that replayed nothing is
    // not, when the caller says so.
    let replayed = |count: &u64| {
        Some(AuditRecord {
            subject: format!("dead_letters:{count}"),
            ..audited("dead_letters.replayed")
        })
    };
    store
        .replay_dead_letters(None, at(), &replayed)
        .await
        .expect("replay all");
    let only_if_any = |count: &u64| (*count > 0).then(|| audited("dead_letters.replayed_one"));
    store
        .replay_dead_letters(Some(42), at(), &only_if_any)
        .await
        .expect("replay one");
    // A session is recorded as it starts and as it ends, for its own user;
    // ending one that does not exist records nothing.
    let session = NewSession {
        token_hash: vec![5; 32],
        user_id: created.id,
        created_at: at(),
        expires_at: at() + Duration::hours(1),
    };
    let login = AuditRecord {
        subject: format!("user:{}", created.id),
        ..audited("login")
    };
    store.create_session(&session, &login).await.expect("a session");
    // A token already in use fails, and so its record is not written.
    assert!(store.create_session(&session, &audited("login.twice")).await.is_err());
    let logout = |user_id: &i64| {
        Some(AuditRecord {
            subject: format!("user:{user_id}"),
            ..audited("logout")
        })
    };
    assert!(store.revoke_session(&[5; 32], &logout).await.expect("log out"), "ended");
    assert!(
        !store.revoke_session(&[5; 32], &logout).await.expect("log out again"),
        "nothing left to end"
    );
    // A plan that changes is recorded; one that does not change is not.
    let plan_changed = |outcome: &StripeOutcome| match outcome {
        StripeOutcome::Applied {
            user_id, changed: true, ..
        } => Some(AuditRecord {
            subject: format!("user:{user_id}"),
            ..audited("plan.changed")
        }),
        _ => None,
    };
    for (event_id, order, plan) in [("evt_1", 1, Plan::Pro), ("evt_2", 2, Plan::Pro)] {
        store
            .record_stripe_event(
                &StripeChange {
                    event_id: event_id.to_owned(),
                    customer_id: "cus_a".to_owned(),
                    order,
                    link_user: Some(created.id),
                    plan: Some(plan),
                    received_at: at(),
                },
                &plan_changed,
            )
            .await
            .expect("record");
    }
    let user = format!("user:{}", created.id);
    let key = format!("api_key:{}", stored.id);
    let mut expected = vec![
        ("api_key.created".to_owned(), key.clone()),
        ("api_key.revoked".to_owned(), key),
        ("dead_letters.replayed".to_owned(), "dead_letters:0".to_owned()),
        ("login".to_owned(), user.clone()),
        ("logout".to_owned(), user.clone()),
        ("pipeline.paused".to_owned(), "pipeline".to_owned()),
        ("plan.changed".to_owned(), user.clone()),
        ("signup".to_owned(), user),
    ];
    expected.sort();
    assert_eq!(actions_audited(&store).await, expected);
}

pub async fn an_action_whose_audit_record_fails_does_not_happen(store: Arc<dyn Store>) {
    let user = store
        .upsert_user(&new_user("careful@example.com", Role::Developer, Plan::Free))
        .await
        .expect("create");
    let session = NewSession {
        token_hash: vec![9; 32],
        user_id: user.id,
        created_at: at(),
        expires_at: at() + Duration::hours(1),
    };
    assert!(store.create_session(&session, &refused("login")).await.is_err());
    assert_eq!(
        store.session_user(&[9; 32], at()).await.expect("read"),
        None,
        "no session"
    );

    let fresh = new_user("never@example.com", Role::Fan, Plan::Free);
    assert!(
        store
            .create_user(&fresh, &|_: &i64| Some(refused("signup")))
            .await
            .is_err()
    );
    assert!(
        store
            .user_credentials("never@example.com")
            .await
            .expect("read")
            .is_none(),
        "no account"
    );

    let key = |hash: u8| NewApiKey {
        user_id: user.id,
        name: format!("key {hash}"),
        key_hash: vec![hash; 32],
        prefix: format!("ck_{hash}"),
        created_at: at(),
    };
    assert!(
        store
            .create_api_key(&key(1), &|_: &ApiKey| Some(refused("api_key.created")))
            .await
            .is_err()
    );
    assert!(store.api_keys(user.id).await.expect("read").is_empty(), "no key");
    let kept = store.create_api_key(&key(2), &unaudited).await.expect("create");
    assert!(
        store
            .revoke_api_key(user.id, kept.id, at(), &|_: &ApiKey| Some(refused("api_key.revoked")))
            .await
            .is_err()
    );
    assert!(
        store.api_key_user(&[2; 32]).await.expect("read").is_some(),
        "the key still works"
    );

    assert!(store.set_paused(true, &refused("pipeline.paused")).await.is_err());
    assert!(!store.pipeline_state().await.expect("state").paused, "still running");

    store
        .create_session(&session, &audited("login"))
        .await
        .expect("a session");
    assert!(
        store
            .revoke_session(&[9; 32], &|_: &i64| Some(refused("logout")))
            .await
            .is_err()
    );
    assert!(
        store.session_user(&[9; 32], at()).await.expect("read").is_some(),
        "still signed in"
    );

    // A plan change whose record fails is not recorded at all: Stripe's
    // retry of the same event applies it, instead of being a duplicate.
    let change = StripeChange {
        event_id: "evt_upgrade".to_owned(),
        customer_id: "cus_careful".to_owned(),
        order: 1,
        link_user: Some(user.id),
        plan: Some(Plan::Pro),
        received_at: at(),
    };
    let fails = |_: &StripeOutcome| Some(refused("plan.changed"));
    assert!(store.record_stripe_event(&change, &fails).await.is_err());
    let unchanged = store.user_by_id(user.id).await.expect("read").expect("user");
    assert_eq!(unchanged.plan, Plan::Free, "the plan did not change");
    let retried = store
        .record_stripe_event(&change, &|_: &StripeOutcome| Some(audited("plan.changed")))
        .await
        .expect("the retry");
    assert_eq!(
        retried,
        StripeOutcome::Applied {
            user_id: user.id,
            plan: Plan::Pro,
            changed: true
        }
    );

    assert_eq!(
        actions_audited(&store).await,
        vec![
            ("login".to_owned(), "pipeline".to_owned()),
            ("plan.changed".to_owned(), "pipeline".to_owned())
        ],
        "only what happened is in the log"
    );
}

/// Each batch applied gets the next number; a store that nodes share keeps
/// the batches, as applied and with their instant, for the others to
/// follow, until pruned. A batch refused for a stale cursor takes none.
pub async fn batches_are_numbered_and_journaled_where_nodes_share_the_store(store: Arc<dyn Store>) {
    let hour = Grain::Hour.bucket_of(at());
    let batch = |from_seq, to_seq, artist: &str| ProcessedBatch {
        from_seq,
        to_seq,
        cells: vec![(cell(Grain::Hour, hour, artist, "oslo"), plays(2))],
        fan_days: vec![(fan_day(artist, "fan_1"), FanDay::default())],
        dead_letters: vec![dead_letter(to_seq, DeadLetterState::Retrying)],
        revenue_gross: 0,
        names: Vec::new(),
    };
    let (first, second) = (batch(0, 2, "art_1"), batch(2, 4, "art_2"));
    let later = at() + time::Duration::seconds(3);
    assert_eq!(store.apply_batch(&first, at()).await.expect("first"), 1);
    assert!(matches!(
        store.apply_batch(&batch(0, 3, "art_3"), at()).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.apply_batch(&second, later).await.expect("second"), 2);
    assert_eq!(store.pipeline_state().await.expect("state").batches, 2);

    let journaled = store.journal_after(0, 10).await.expect("journal");
    if !store.keeps_journal() {
        assert!(journaled.is_empty(), "a store one node owns keeps no journal");
        return;
    }
    assert_eq!(
        journaled,
        vec![
            crate::AppliedBatch {
                number: 1,
                as_of: at(),
                batch: first
            },
            crate::AppliedBatch {
                number: 2,
                as_of: later,
                batch: second.clone()
            },
        ]
    );
    assert_eq!(store.journal_after(1, 10).await.expect("after 1").len(), 1);
    assert_eq!(store.journal_after(0, 1).await.expect("one").len(), 1);
    // Recorded now: nothing was recorded before an hour ago, everything before an hour ahead.
    let now = time::OffsetDateTime::now_utc();
    assert_eq!(
        store
            .prune_journal(now - time::Duration::hours(1))
            .await
            .expect("prune"),
        0
    );
    assert_eq!(
        store
            .prune_journal(now + time::Duration::hours(1))
            .await
            .expect("prune"),
        2
    );
    assert!(store.journal_after(0, 10).await.expect("journal").is_empty());
}

pub async fn display_names_keep_the_newest_name_and_the_first_spelling(store: Arc<dyn Store>) {
    use crate::{DisplayName, NameKind};
    let at = |minute: i64| time::macros::datetime!(2026-11-30 12:00 UTC) + time::Duration::minutes(minute);
    let name = |kind, id: &str, name: &str, minute, seq| DisplayName {
        kind,
        id: id.to_owned(),
        name: name.to_owned(),
        at: at(minute),
        seq,
    };
    let batch = |from_seq, to_seq, names| ProcessedBatch {
        from_seq,
        to_seq,
        names,
        ..ProcessedBatch::default()
    };
    store
        .apply_batch(
            &batch(
                0,
                10,
                vec![
                    name(NameKind::Artist, "art_1", "Tems", 5, 4),
                    name(NameKind::LiveEvent, "live_1", "Afro Nation", 5, 4),
                    name(NameKind::City, "lagos", "Lagos", 5, 6),
                    name(NameKind::Genre, "afrobeats", "Afrobeats", 5, 6),
                ],
            ),
            at(0),
        )
        .await
        .expect("first batch");
    store
        .apply_batch(
            &batch(
                10,
                20,
                vec![
                    // An older entry, processed later: does not rename.
                    name(NameKind::Artist, "art_1", "Temilade", 1, 12),
                    // Same instant, later in the log: renames.
                    name(NameKind::LiveEvent, "live_1", "Afro Nation Lagos", 5, 14),
                    // A later spelling: the first stays.
                    name(NameKind::City, "lagos", "LAGOS", 9, 15),
                    // An earlier spelling (a dead letter replayed): it was first.
                    name(NameKind::Genre, "afrobeats", "AfroBeats", 1, 2),
                    name(NameKind::Artist, "art_2", "Burna Boy", 2, 16),
                ],
            ),
            at(0),
        )
        .await
        .expect("second batch");
    let mut names = store.display_names().await.expect("names");
    names.sort_by(|a, b| (a.kind, &a.id).cmp(&(b.kind, &b.id)));
    assert_eq!(
        names,
        vec![
            name(NameKind::Artist, "art_1", "Tems", 5, 4),
            name(NameKind::Artist, "art_2", "Burna Boy", 2, 16),
            name(NameKind::LiveEvent, "live_1", "Afro Nation Lagos", 5, 14),
            name(NameKind::City, "lagos", "Lagos", 5, 6),
            name(NameKind::Genre, "afrobeats", "AfroBeats", 1, 2),
        ]
    );
    store.reset_derived().await.expect("reset");
    assert!(
        store.display_names().await.expect("names").is_empty(),
        "derived: a rebuild recomputes them"
    );
}

fn new_report(id: &str, user_id: i64, created_at: OffsetDateTime) -> NewReport {
    NewReport {
        id: id.to_owned(),
        user_id,
        template: "artist".to_owned(),
        format: "pdf".to_owned(),
        params: r#"{"artist_id":"a1","range":"30d"}"#.to_owned(),
        created_at,
    }
}

pub async fn reports_count_against_a_quota_and_leave_when_discarded(store: Arc<dyn Store>) {
    let owner = store
        .upsert_user(&new_user("basic@example.com", Role::Artist, Plan::Basic))
        .await
        .expect("create");
    let other = store
        .upsert_user(&new_user("other@example.com", Role::Artist, Plan::Basic))
        .await
        .expect("create");
    let month = datetime!(2026-11-01 0:00 UTC);
    let quota = Some(ReportQuota { max: 2, since: month });
    // Last month's report does not count against this month's quota.
    let old = store
        .reserve_report(
            &new_report("r0", owner.id, month - Duration::days(3)),
            quota,
            &audited("report.created"),
        )
        .await
        .expect("reserve")
        .expect("room");
    assert_eq!(old.size_bytes, None, "being made");
    let concurrent = (1..=4).map(|i| {
        let store = store.clone();
        let id = format!("r{i}");
        async move {
            store
                .reserve_report(&new_report(&id, owner.id, at()), quota, &audited("report.created"))
                .await
                .expect("reserve")
        }
    });
    let reserved: Vec<_> = futures_join_all(concurrent).await.into_iter().flatten().collect();
    assert_eq!(
        reserved.len(),
        2,
        "two of four concurrent requests fit the quota of two"
    );
    assert_eq!(store.reports_made_since(owner.id, month).await.expect("count"), 2);
    // Another account's quota is its own.
    assert!(
        store
            .reserve_report(&new_report("theirs", other.id, at()), quota, &audited("report.created"))
            .await
            .expect("reserve")
            .is_some()
    );
    // A report that could not be made gives its place back.
    store.discard_report(&reserved[0].id).await.expect("discard");
    assert_eq!(store.report(&reserved[0].id).await.expect("read"), None);
    let again = store
        .reserve_report(
            &new_report("r9", owner.id, at() + Duration::seconds(1)),
            quota,
            &audited("report.created"),
        )
        .await
        .expect("reserve")
        .expect("room again");
    store.complete_report(&again.id, 12_345, 77).await.expect("complete");
    let made = store.report(&again.id).await.expect("read").expect("found");
    assert_eq!((made.size_bytes, made.watermark), (Some(12_345), Some(77)));
    assert_eq!(made.params, again.params);
    // Unlimited plans pass no quota.
    assert!(
        store
            .reserve_report(
                &new_report("r10", owner.id, at() + Duration::seconds(2)),
                None,
                &audited("report.created")
            )
            .await
            .expect("reserve")
            .is_some()
    );
    // Newest first, paged by the last id seen; another user's reports apart.
    let first_page = store.reports_of(owner.id, None, 2).await.expect("list");
    let ids: Vec<&str> = first_page.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["r10", "r9"]);
    let rest = store.reports_of(owner.id, Some("r9"), 10).await.expect("list");
    assert_eq!(rest.len(), 2, "{rest:?}");
    assert_eq!(rest.last().map(|r| r.id.as_str()), Some("r0"));
    assert!(
        store
            .reports_of(owner.id, Some("theirs"), 10)
            .await
            .expect("list")
            .is_empty(),
        "another account's report is no cursor"
    );
    let audit = store
        .audit_records(&AuditQuery {
            actor: None,
            action: Some("report.created".to_owned()),
            subject: None,
            since: None,
            before_id: None,
            limit: 100,
        })
        .await
        .expect("audit");
    assert_eq!(audit.len(), 6, "one record per report reserved, none for the refused");

    // An account's branding: set, replaced, removed; its own only.
    assert_eq!(store.report_brand(owner.id).await.expect("read"), None);
    let brand = ReportBrand {
        name: "Afrobeats Weekly".to_owned(),
        accent: "#118ab2".to_owned(),
        logo_png: Some(vec![0x89, b'P', b'N', b'G']),
        updated_at: at(),
    };
    store
        .set_report_brand(owner.id, Some(&brand), &audited("branding.set"))
        .await
        .expect("set");
    assert_eq!(store.report_brand(owner.id).await.expect("read"), Some(brand.clone()));
    let plainer = ReportBrand {
        logo_png: None,
        accent: "#000000".to_owned(),
        ..brand
    };
    store
        .set_report_brand(owner.id, Some(&plainer), &audited("branding.set"))
        .await
        .expect("replace");
    assert_eq!(store.report_brand(owner.id).await.expect("read"), Some(plainer));
    assert_eq!(store.report_brand(other.id).await.expect("read"), None);
    store
        .set_report_brand(owner.id, None, &audited("branding.removed"))
        .await
        .expect("remove");
    assert_eq!(store.report_brand(owner.id).await.expect("read"), None);
}

/// Joins futures without a dependency on an executor's helpers.
async fn futures_join_all<F: std::future::Future + Send + 'static>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.expect("task"));
    }
    out
}

pub async fn share_links_end_rotate_and_count_their_views(store: Arc<dyn Store>) {
    let owner = store
        .upsert_user(&new_user("pro@example.com", Role::Artist, Plan::Pro))
        .await
        .expect("create");
    let other = store
        .upsert_user(&new_user("other@example.com", Role::Artist, Plan::Pro))
        .await
        .expect("create");
    store
        .reserve_report(&new_report("rep", owner.id, at()), None, &audited("report.created"))
        .await
        .expect("reserve")
        .expect("room");
    let new_share = |token: &str, expires_at: Option<OffsetDateTime>| NewShare {
        token: token.to_owned(),
        report_id: "rep".to_owned(),
        user_id: owner.id,
        password_hash: Some("$argon2id$v=19$stub".to_owned()),
        created_at: at(),
        expires_at,
    };
    let first = store
        .create_share(
            &new_share("tok-1", Some(at() + Duration::days(7))),
            &audited("share.created"),
        )
        .await
        .expect("create");
    assert!(first.in_force(at()) && !first.in_force(at() + Duration::days(7)));
    assert!(matches!(
        store
            .create_share(&new_share("tok-1", None), &audited("share.created"))
            .await,
        Err(StoreError::Conflict(_))
    ));
    let forever = store
        .create_share(&new_share("tok-2", None), &audited("share.created"))
        .await
        .expect("create");
    assert!(forever.in_force(at() + Duration::days(3650)));
    assert_eq!(store.share("tok-1").await.expect("read"), Some(first.clone()));
    assert_eq!(store.share("nope").await.expect("read"), None);

    // Views are counted and logged, newest first.
    for (minutes, agent) in [(1, "Chrome"), (2, "curl")] {
        let view = ShareView {
            at: at() + Duration::minutes(minutes),
            address_hash: format!("h{minutes}"),
            agent: agent.to_owned(),
        };
        store.record_share_view(first.id, &view).await.expect("view");
    }
    let views = store.share_views(first.id, 10).await.expect("views");
    assert_eq!(
        views.iter().map(|v| v.agent.as_str()).collect::<Vec<_>>(),
        ["curl", "Chrome"]
    );
    assert_eq!(store.share("tok-1").await.expect("read").expect("found").views, 2);

    // Rotation: only the owner, only a link in force; the new token keeps
    // the report, password and expiry; the old one ends at once.
    let later = at() + Duration::hours(1);
    assert_eq!(
        store
            .end_share(
                other.id,
                "tok-1",
                ShareEnd::Rotated,
                Some("tok-3"),
                later,
                &audited("share.rotated")
            )
            .await
            .expect("rotate"),
        None
    );
    let rotated = store
        .end_share(
            owner.id,
            "tok-1",
            ShareEnd::Rotated,
            Some("tok-3"),
            later,
            &audited("share.rotated"),
        )
        .await
        .expect("rotate")
        .expect("in force");
    assert_eq!(rotated.token, "tok-3");
    assert_eq!(
        (&rotated.report_id, &rotated.password_hash, rotated.expires_at),
        (&first.report_id, &first.password_hash, first.expires_at)
    );
    assert_eq!(rotated.views, 0);
    let old = store.share("tok-1").await.expect("read").expect("kept");
    assert_eq!(old.ended, Some((later, ShareEnd::Rotated)));
    assert!(!old.in_force(later));
    assert_eq!(
        store
            .end_share(
                owner.id,
                "tok-1",
                ShareEnd::Revoked,
                None,
                later,
                &audited("share.revoked")
            )
            .await
            .expect("revoke"),
        None,
        "an ended link ends once"
    );
    // Revocation.
    let revoked = store
        .end_share(
            owner.id,
            "tok-2",
            ShareEnd::Revoked,
            None,
            later,
            &audited("share.revoked"),
        )
        .await
        .expect("revoke")
        .expect("in force");
    assert_eq!(revoked.ended, Some((later, ShareEnd::Revoked)));
    // An expired link cannot be rotated back to life.
    assert_eq!(
        store
            .end_share(
                owner.id,
                "tok-3",
                ShareEnd::Rotated,
                Some("tok-4"),
                at() + Duration::days(8),
                &audited("share.rotated")
            )
            .await
            .expect("rotate"),
        None
    );
    let listed: Vec<String> = store
        .shares_of(owner.id)
        .await
        .expect("list")
        .into_iter()
        .map(|s| s.token)
        .collect();
    assert_eq!(listed, ["tok-3", "tok-2", "tok-1"]);
    assert!(store.shares_of(other.id).await.expect("list").is_empty());
}

pub async fn schedules_are_claimed_once_and_move_on_after_each_delivery(store: Arc<dyn Store>) {
    let owner = store
        .upsert_user(&new_user("sched@example.com", Role::Artist, Plan::Pro))
        .await
        .expect("create");
    let schedule = |next_at: OffsetDateTime| NewSchedule {
        user_id: owner.id,
        template: "artist".to_owned(),
        format: "pdf".to_owned(),
        params: r#"{"artist_id":"a1","range":"7d"}"#.to_owned(),
        every: "week".to_owned(),
        at_minute: 9 * 60,
        weekday: Some(0),
        day: None,
        recipients: vec!["a@example.com".to_owned(), "b@example.com".to_owned()],
        deliver: "attachment".to_owned(),
        only_if_changed: true,
        created_at: at(),
        next_at,
    };
    let due = store
        .create_schedule(&schedule(at() - Duration::minutes(1)), 2, &audited("schedule.created"))
        .await
        .expect("create");
    assert_eq!(due.schedule.recipients.len(), 2);
    assert_eq!(due.attempts, 0);
    let later = store
        .create_schedule(&schedule(at() + Duration::days(3)), 2, &audited("schedule.created"))
        .await
        .expect("create");
    assert!(matches!(
        store
            .create_schedule(&schedule(at()), 2, &audited("schedule.created"))
            .await,
        Err(StoreError::LimitReached(_))
    ));
    assert_eq!(store.schedules_of(owner.id).await.expect("list").len(), 2);

    // Only what is due is claimed, once: the lease hides it from the next claim.
    let lease = at() + Duration::minutes(10);
    let claimed = store
        .claim_due_schedule(at(), lease)
        .await
        .expect("claim")
        .expect("one is due");
    assert_eq!(claimed.id, due.id);
    assert_eq!(store.claim_due_schedule(at(), lease).await.expect("claim"), None);
    // A lease that runs out makes it due again (its node died).
    let again = store
        .claim_due_schedule(lease, lease + Duration::minutes(10))
        .await
        .expect("claim")
        .expect("due again");
    assert_eq!(again.id, due.id);

    // A failed attempt keeps its report for the retry; a success moves on.
    let failed = NewDelivery {
        schedule_id: due.id,
        at: at(),
        status: "retrying".to_owned(),
        attempt: 1,
        report_id: Some("rep_x".to_owned()),
        detail: Some("smtp: connection refused".to_owned()),
    };
    store
        .record_delivery(
            &failed,
            &ScheduleAfter {
                next_at: at() + Duration::minutes(1),
                attempts: 1,
                pending_report_id: Some("rep_x".to_owned()),
                last_digest: None,
            },
        )
        .await
        .expect("record");
    let retry = store
        .claim_due_schedule(at() + Duration::minutes(1), lease)
        .await
        .expect("claim")
        .expect("due for a retry");
    assert_eq!((retry.attempts, retry.pending_report_id.as_deref()), (1, Some("rep_x")));
    let sent = NewDelivery {
        status: "sent".to_owned(),
        attempt: 2,
        detail: None,
        ..failed
    };
    store
        .record_delivery(
            &sent,
            &ScheduleAfter {
                next_at: at() + Duration::days(7),
                attempts: 0,
                pending_report_id: None,
                last_digest: Some("digest-1".to_owned()),
            },
        )
        .await
        .expect("record");
    let moved = store
        .schedules_of(owner.id)
        .await
        .expect("list")
        .into_iter()
        .find(|s| s.id == due.id)
        .expect("kept");
    assert_eq!(moved.schedule.next_at, at() + Duration::days(7));
    assert_eq!((moved.attempts, moved.pending_report_id), (0, None));
    assert_eq!(moved.last_digest.as_deref(), Some("digest-1"));
    let deliveries = store.deliveries(due.id, 10).await.expect("deliveries");
    let statuses: Vec<&str> = deliveries.iter().map(|d| d.delivery.status.as_str()).collect();
    assert_eq!(statuses, ["sent", "retrying"], "newest first");

    let other = store
        .upsert_user(&new_user("else@example.com", Role::Fan, Plan::Pro))
        .await
        .expect("create");
    assert!(
        !store
            .delete_schedule(other.id, later.id, &audited("schedule.deleted"))
            .await
            .expect("delete")
    );
    assert!(
        store
            .delete_schedule(owner.id, later.id, &audited("schedule.deleted"))
            .await
            .expect("delete")
    );
    assert!(store.deliveries(later.id, 10).await.expect("deliveries").is_empty());
    assert_eq!(store.schedules_of(owner.id).await.expect("list").len(), 1);
}

pub async fn alert_rules_keep_their_parts_and_a_notification_is_claimed_once(store: Arc<dyn Store>) {
    use crate::NewNotification;
    assert!(store.alert_rules().await.expect("rules").is_empty());
    let audit = audited("alert.updated");
    let at = datetime!(2026-12-05 12:00 UTC);
    let notification = |key: &str| NewNotification {
        key: key.to_owned(),
        rule: "queue_depth".to_owned(),
        kind: "firing".to_owned(),
        route: "slack".to_owned(),
        status: "sending".to_owned(),
        at,
        detail: r#"{"value":1001}"#.to_owned(),
    };
    store
        .save_alert_config("queue_depth", r#"{"a":1}"#, &audit)
        .await
        .expect("config");
    let version =
        |rules: &[crate::StoredAlertRule], rule: &str| rules.iter().find(|r| r.rule == rule).map_or(0, |r| r.version);
    let rules = store.alert_rules().await.expect("rules");
    let first = store
        .commit_alert_evaluation(
            "queue_depth",
            version(&rules, "queue_depth"),
            r#"{"s":1}"#,
            &[notification("k1")],
        )
        .await
        .expect("commit")
        .expect("the version was current");
    assert!(first[0].is_some());
    // A rule never written before starts at version 0.
    assert!(
        store
            .commit_alert_evaluation("error_rate", 0, r#"{"s":2}"#, &[])
            .await
            .expect("commit")
            .is_some()
    );
    // An evaluation from the older version (another node's) writes nothing,
    // its notifications included.
    let stale = store
        .commit_alert_evaluation(
            "queue_depth",
            version(&rules, "queue_depth"),
            r#"{"s":9}"#,
            &[notification("k9")],
        )
        .await
        .expect("commit");
    assert_eq!(stale, None);
    // A later configuration replaces the earlier and keeps the state.
    store
        .save_alert_config("queue_depth", r#"{"a":2}"#, &audit)
        .await
        .expect("config");
    let rules = store.alert_rules().await.expect("rules");
    let parts: Vec<_> = rules
        .iter()
        .map(|r| (r.rule.as_str(), r.config.as_deref(), r.state.as_deref()))
        .collect();
    assert_eq!(
        parts,
        vec![
            ("error_rate", None, Some(r#"{"s":2}"#)),
            ("queue_depth", Some(r#"{"a":2}"#), Some(r#"{"s":1}"#))
        ]
    );
    let audited_records = store
        .audit_records(&AuditQuery {
            action: Some("alert.updated".to_owned()),
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .expect("audit");
    assert_eq!(audited_records.len(), 2);

    // The same key again (a hand-over) records nothing; a new one does.
    let again = store
        .commit_alert_evaluation(
            "queue_depth",
            version(&rules, "queue_depth"),
            r#"{"s":3}"#,
            &[notification("k1"), notification("k2")],
        )
        .await
        .expect("commit")
        .expect("current");
    assert_eq!(again[0], None);
    let second = again[1].expect("new");
    store
        .finish_notification(second, "failed", 3, Some("503 from the receiver"))
        .await
        .expect("finish");
    let listed = store.notifications(None, 10).await.expect("list");
    assert_eq!(
        listed.iter().map(|n| n.notification.key.as_str()).collect::<Vec<_>>(),
        vec!["k2", "k1"]
    );
    assert_eq!((listed[0].status.as_str(), listed[0].attempts), ("failed", 3));
    assert_eq!(listed[0].error.as_deref(), Some("503 from the receiver"));
    assert_eq!((listed[1].status.as_str(), listed[1].notification.at), ("sending", at));
    let older = store.notifications(Some(second), 10).await.expect("page");
    assert_eq!(older.len(), 1);

    // k1 is still `sending`: once stale it is taken again, once.
    let later = at + Duration::minutes(20);
    let retaken = store
        .retake_stale_notifications(at + Duration::minutes(10), later, 10)
        .await
        .expect("retake");
    assert_eq!(
        retaken.iter().map(|n| n.notification.key.as_str()).collect::<Vec<_>>(),
        vec!["k1"]
    );
    assert!(
        store
            .retake_stale_notifications(at + Duration::minutes(10), later, 10)
            .await
            .expect("retake")
            .is_empty(),
        "taken at `later`, it is not stale any more"
    );
}

pub async fn one_node_holds_the_alert_lease_and_the_processing_node_takes_it(store: Arc<dyn Store>) {
    let now = datetime!(2026-12-05 12:00 UTC);
    let until = now + Duration::seconds(15);
    assert!(store.claim_alert_lease("a", false, now, until).await.expect("claim"));
    assert!(store.claim_alert_lease("a", false, now, until).await.expect("renew"));
    assert!(
        !store
            .claim_alert_lease("b", false, now, until)
            .await
            .expect("held by a")
    );
    // The processing node takes it from one that does not process...
    assert!(store.claim_alert_lease("leader", true, now, until).await.expect("take"));
    assert!(
        !store
            .claim_alert_lease("a", false, now, until)
            .await
            .expect("held by leader")
    );
    // ...and anyone takes a lapsed lease.
    let later = until + Duration::seconds(1);
    assert!(
        store
            .claim_alert_lease("b", false, later, later + Duration::seconds(15))
            .await
            .expect("lapsed")
    );
}
