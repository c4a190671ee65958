//! What a rollout asks of the platform's store, on both real stores: values that expire (its records' TTL) and
//! thousands of them read together (`status`, `report`).

use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use wx_plugin_manager::token::{DurableStore, RedisStore};

use crate::support::shared_store::{on_both_stores, SharedStore};

on_both_stores!(expiring_values_count_as_absent_once_past_their_time_and_thousands_are_read_together);

fn expiring_values_count_as_absent_once_past_their_time_and_thousands_are_read_together(store: SharedStore) {
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
        let two = ["wx:rollout:wxc:r1:target:wxa", "wx:rollout:wxc:r1:target:wxb"].map(str::to_owned);
        assert_eq!(durable.get_many(&two).await.unwrap(), [Some("second".to_owned()), Some("kept".to_owned())]);

        // Thousands, read back together in the order asked, the absent ones as such.
        let writes = (0..1500).map(|i| {
            let durable = &durable;
            async move {
                let key = format!("wx:rollout:wxc:big:target:wx{i:016}");
                durable.swap_expiring(&key, None, &i.to_string(), Duration::from_secs(60)).await.unwrap()
            }
        });
        let written: Vec<bool> = stream::iter(writes).buffer_unordered(16).collect().await;
        assert!(written.iter().all(|w| *w));
        let asked: Vec<String> = (0..1600).rev().map(|i| format!("wx:rollout:wxc:big:target:wx{i:016}")).collect();
        let big = durable.get_many(&asked).await.unwrap();
        assert_eq!(big.len(), 1600);
        assert!(big[..100].iter().all(Option::is_none), "1500 to 1599 were never written");
        let read: Vec<String> = big[100..].iter().map(|v| v.clone().unwrap()).collect();
        let expected: Vec<String> = (0..1500).rev().map(|i: u32| i.to_string()).collect();
        assert_eq!(read, expected, "each value in the order asked");

        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert_eq!(durable.get(key).await.unwrap(), None, "past its time: absent");
        let after = durable.get_many(&two).await.unwrap();
        assert_eq!(after, [None, Some("kept".to_owned())], "read together too: absent past its time, the other kept");
        assert!(durable.swap_expiring(key, None, "third", keep).await.unwrap(), "an expired value is absent to a swap");
    });
}
