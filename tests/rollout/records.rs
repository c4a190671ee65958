//! What a rollout asks of the platform's store, on both real stores: values that expire (its records' TTL) and the
//! one-pass read of thousands of them (`status`, `report`).

use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use wx_plugin_manager::token::{DurableStore, RedisStore};

use crate::support::shared_store::{on_both_stores, SharedStore};

on_both_stores!(expiring_values_count_as_absent_once_past_their_time_and_entries_read_thousands_in_one_pass);

fn expiring_values_count_as_absent_once_past_their_time_and_entries_read_thousands_in_one_pass(store: SharedStore) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let durable: Box<dyn DurableStore> = match &store {
            SharedStore::Redis(redis) => Box::new(RedisStore::new(&redis.url()).unwrap()),
            SharedStore::DynamoDb(dynalite) => Box::new(dynalite.store()),
        };
        let keep = Duration::from_millis(1500);
        let key = "wx:rollout:wxc:r1:target:wxa";
        assert!(durable.swap_expiring(key, None, "first", keep).await.unwrap());
        assert!(!durable.swap_expiring(key, None, "again", keep).await.unwrap(), "present: not absent");
        assert!(durable.swap_expiring(key, Some("first"), "second", keep).await.unwrap());
        assert!(durable.swap("wx:rollout:wxc:r1:target:wxb", None, "kept").await.unwrap());
        let entries = durable.entries("wx:rollout:wxc:r1:target:").await.unwrap();
        let expected = [("wx:rollout:wxc:r1:target:wxa", "second"), ("wx:rollout:wxc:r1:target:wxb", "kept")];
        assert_eq!(entries, expected.map(|(k, v)| (k.to_owned(), v.to_owned())));

        // Thousands under one prefix, others beside it: read back whole, sorted, in one pass.
        let writes = (0..1500).map(|i| {
            let durable = &durable;
            async move {
                let key = format!("wx:rollout:wxc:big:target:wx{i:016}");
                durable.swap_expiring(&key, None, &i.to_string(), Duration::from_secs(60)).await.unwrap()
            }
        });
        let written: Vec<bool> = stream::iter(writes).buffer_unordered(16).collect().await;
        assert!(written.iter().all(|w| *w));
        let big = durable.entries("wx:rollout:wxc:big:target:").await.unwrap();
        assert_eq!(big.len(), 1500);
        assert!(big.windows(2).all(|w| w[0].0 < w[1].0), "sorted by key");
        assert_eq!(big[42], ("wx:rollout:wxc:big:target:wx0000000000000042".to_owned(), "42".to_owned()));

        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert_eq!(durable.get(key).await.unwrap(), None, "past its time: absent");
        let entries = durable.entries("wx:rollout:wxc:r1:target:").await.unwrap();
        assert_eq!(
            entries,
            [("wx:rollout:wxc:r1:target:wxb".to_owned(), "kept".to_owned())],
            "a value without a TTL stays"
        );
        assert!(durable.swap_expiring(key, None, "third", keep).await.unwrap(), "an expired value is absent to a swap");
    });
}
