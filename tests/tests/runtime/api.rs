//! The embedding API's promises: futures are `Send`, tools are shared
//! between tasks, and the descriptor is what the tool said.

use airlock::{Invocation, Tool};
use airlock_tests::{host, load_guest};

fn assert_send<T: Send>(_: &T) {}
fn assert_shareable<T: Send + Sync + Clone + 'static>() {}

#[tokio::test]
async fn invoke_futures_are_send_and_tools_are_shared() {
    assert_shareable::<Tool>();
    assert_shareable::<airlock::Host>();
    let echo = load_guest(host(), "echo").await;
    let future = host().invoke(&echo, Invocation::new("{}"));
    assert_send(&future);
    drop(future);

    let tasks: Vec<_> = (0..4)
        .map(|i| {
            let echo = echo.clone();
            tokio::spawn(async move {
                host()
                    .invoke(&echo, Invocation::new(format!("[{i}]")))
                    .await
            })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        let outcome = task.await.expect("task").expect("runs");
        assert_eq!(outcome.output(), Some(format!("[{i}]").as_str()));
    }
}

#[tokio::test]
async fn descriptor_is_what_the_tool_said() {
    let tool = load_guest(host(), "json-transform").await;
    let descriptor = tool.descriptor();
    assert_eq!(descriptor.name, "json-transform");
    assert_eq!(descriptor.version, "0.1.0");
    assert!(descriptor.description.contains("records"));
    let schema: serde_json::Value =
        serde_json::from_str(&descriptor.input_schema).expect("schema is JSON");
    assert_eq!(schema["required"], serde_json::json!(["records"]));
    assert_eq!(tool.world(), airlock::World::Pure);
    assert_eq!(tool.sha256(), &tool.info().sha256);
}
