//! Setting up PostgreSQL tables for tests, each test with tables of its own.

use std::time::{SystemTime, UNIX_EPOCH};

/// A table name no other test (or earlier run) uses.
pub fn unique_table(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos();
    format!("{prefix}_{}_{nanos}", std::process::id())
}

/// Runs SQL statements (separated by `;`) on the test database.
pub fn execute(url: &str, sql: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .expect("the test database accepts connections");
        let task = tokio::spawn(connection);
        client.batch_execute(sql).await.expect("the setup SQL runs");
        drop(client);
        let _ = task.await;
    });
}
