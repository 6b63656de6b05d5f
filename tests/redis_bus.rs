//! `RedisBus` on a real `redis-server` (each test starts its own on a free loopback port): two
//! buses on one server play two app instances. Delivery across instances, exact targets,
//! channel isolation, malformed messages, a restarted server (resync, then pushes resume),
//! and no task or subscription left behind once the bus is dropped. On a real Redis Cluster:
//! delivery between instances listening on different nodes, and a failover of the node one of
//! them listens on (it moves to another node, resyncs, and hears again), and a publish that fails
//! while a node dies or hangs still reaching the instances listening elsewhere.

#[path = "support/redis_cluster.rs"]
mod redis_cluster;
#[path = "support/redis_server.rs"]
mod redis_server;

use std::future::Future;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use mizan_cache_redis::redis::{self, AsyncCommands};
use mizan_cache_redis::RedisBus;
use mizan_core::{BusError, BusEvent, BusReceiver, InvalidationBus, Target};
use redis_cluster::RedisCluster;
use redis_server::RedisServer;
use serde_json::{json, Value};

/// The bound on waiting for any one event; events normally arrive within milliseconds.
const WAIT: Duration = Duration::from_secs(15);

fn params(value: Value) -> Option<serde_json::Map<String, Value>> {
    value.as_object().cloned()
}

fn broad(context: &str) -> Target {
    Target::Context {
        context: context.into(),
        params: None,
    }
}

/// The next event, or a failure naming what was awaited after [`WAIT`].
async fn next(receiver: &mut BusReceiver, what: &str) -> BusEvent {
    match tokio::time::timeout(WAIT, receiver.next()).await {
        Ok(Some(event)) => event,
        Ok(None) => panic!("the receiver ended while waiting for {what}"),
        Err(_) => panic!("no event within {WAIT:?} while waiting for {what}"),
    }
}

async fn expect_targets(receiver: &mut BusReceiver, targets: &[Target]) {
    let event = next(receiver, "targets").await;
    assert_eq!(event, BusEvent::Targets(targets.into()));
}

/// Polls `condition` until it holds, failing after [`WAIT`].
async fn eventually<F: Future<Output = bool>>(what: &str, mut condition: impl FnMut() -> F) {
    let deadline = Instant::now() + WAIT;
    while !condition().await {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn raw_client(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(server.url()).expect("a redis URL");
    client
        .get_multiplexed_async_connection()
        .await
        .expect("connect")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_reaches_every_instance_with_exactly_its_targets() {
    let server = RedisServer::start();
    let a = RedisBus::connect(server.url()).await.expect("bus A");
    let b = RedisBus::connect(server.url()).await.expect("bus B");
    let (mut on_a, mut on_b) = (a.subscribe(), b.subscribe());
    let mut also_on_b = b.subscribe();

    let batches = [
        vec![broad("catalog")],
        vec![Target::Context {
            context: "user".into(),
            params: params(json!({"user_id": 5, "lang": "fr", "flag": true})),
        }],
        vec![
            Target::Function {
                context: "user".into(),
                function: "user_profile".into(),
                params: params(json!({"user_id": 5})),
            },
            Target::Function {
                context: "catalog".into(),
                function: "catalog_items".into(),
                params: None,
            },
            broad("notes"),
        ],
    ];
    for batch in &batches {
        a.publish(batch).await.expect("publish on A");
    }
    b.publish(&[broad("from-b")]).await.expect("publish on B");
    for receiver in [&mut on_a, &mut on_b, &mut also_on_b] {
        for batch in &batches {
            expect_targets(receiver, batch).await;
        }
        // Nothing else came in between: the next event is B's own publish.
        expect_targets(receiver, &[broad("from-b")]).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buses_on_other_channels_do_not_hear_each_other() {
    let server = RedisServer::start();
    let shop = RedisBus::builder(server.url())
        .with_channel("shop:invalidate")
        .build()
        .await
        .expect("shop bus");
    let blog = RedisBus::builder(server.url())
        .with_channel("blog:invalidate")
        .build()
        .await
        .expect("blog bus");
    assert_eq!(shop.channel(), "shop:invalidate");
    let mut on_blog = blog.subscribe();
    shop.publish(&[broad("catalog")]).await.expect("publish");
    blog.publish(&[broad("posts")]).await.expect("publish");
    expect_targets(&mut on_blog, &[broad("posts")]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_are_skipped_and_later_ones_arrive() {
    let server = RedisServer::start();
    let a = RedisBus::connect(server.url()).await.expect("bus A");
    let b = RedisBus::connect(server.url()).await.expect("bus B");
    let mut on_b = b.subscribe();
    let mut raw = raw_client(&server).await;
    let garbage: [&[u8]; 5] = [
        b"not json",
        b"[1]",
        br#"{"context": "user"}"#,
        br#"[{"params": {}}]"#,
        b"\xff\xfe[]",
    ];
    for message in garbage {
        let heard: u64 = raw
            .publish(RedisBus::DEFAULT_CHANNEL, message)
            .await
            .expect("raw PUBLISH");
        assert_eq!(heard, 2, "both buses listen");
    }
    a.publish(&[broad("catalog")]).await.expect("publish on A");
    // The first event after the garbage is the good message: no resync, no partial targets.
    expect_targets(&mut on_b, &[broad("catalog")]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_resyncs_subscribers_then_pushes_resume() {
    let mut server = RedisServer::start();
    let a = RedisBus::connect(server.url()).await.expect("bus A");
    let b = RedisBus::connect(server.url()).await.expect("bus B");
    let (mut on_a, mut on_b) = (a.subscribe(), b.subscribe());
    a.publish(&[broad("before")]).await.expect("publish");
    expect_targets(&mut on_b, &[broad("before")]).await;
    expect_targets(&mut on_a, &[broad("before")]).await;

    server.stop();
    let failed = a.publish(&[broad("lost")]).await;
    assert!(
        matches!(failed, Err(BusError::Unavailable(_))),
        "{failed:?}"
    );
    server.restart();

    // Both instances noticed the gap, once they listen again.
    assert_eq!(next(&mut on_a, "resync on A").await, BusEvent::Resync);
    assert_eq!(next(&mut on_b, "resync on B").await, BusEvent::Resync);
    // A's publishing connection reconnects by itself; a publish may fail until it has.
    let after = [Target::Context {
        context: "user".into(),
        params: params(json!({"user_id": 2})),
    }];
    eventually("a publish after the restart", || async {
        a.publish(&after).await.is_ok()
    })
    .await;
    expect_targets(&mut on_b, &after).await;
    expect_targets(&mut on_a, &after).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_bus_stops_its_task_and_unsubscribes() {
    let server = RedisServer::start();
    let mut raw = raw_client(&server).await;
    let metrics = tokio::runtime::Handle::current().metrics();
    let tasks_before = metrics.num_alive_tasks();

    let bus = RedisBus::builder(server.url())
        .with_channel("dropped:invalidate")
        .build()
        .await
        .expect("bus");
    let clone = bus.clone();
    let mut receiver = bus.subscribe();
    bus.publish(&[broad("x")]).await.expect("publish");
    expect_targets(&mut receiver, &[broad("x")]).await;
    assert!(metrics.num_alive_tasks() > tasks_before);

    drop(bus);
    let still: u64 = raw.publish("dropped:invalidate", "[]").await.expect("raw");
    assert_eq!(still, 1, "a clone keeps the bus listening");
    drop(clone);
    eventually("the bus unsubscribing", || {
        let mut raw = raw.clone();
        async move {
            let listeners: u64 = raw.publish("dropped:invalidate", "[]").await.expect("raw");
            listeners == 0
        }
    })
    .await;
    eventually("the bus's tasks ending", || async {
        metrics.num_alive_tasks() == tasks_before
    })
    .await;
}

#[test]
fn connecting_outside_a_runtime_is_an_error_not_a_panic() {
    let built = futures_executor::block_on(RedisBus::connect("redis://127.0.0.1:1/"));
    assert!(matches!(built, Err(BusError::Unavailable(_))), "{built:?}");
}

#[tokio::test]
async fn bad_urls_and_refused_connections_are_errors() {
    let built = RedisBus::connect("http://example/").await;
    assert!(matches!(built, Err(BusError::Backend(_))), "{built:?}");
    // Port 1 on loopback: nothing listens there (and it is not anyone's Redis).
    let built = RedisBus::connect("redis://127.0.0.1:1/").await;
    let Err(BusError::Unavailable(source)) = built else {
        panic!("{built:?}")
    };
    assert!(
        source.downcast_ref::<redis::RedisError>().is_some(),
        "{source}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_listening_connection_resyncs_and_a_healthy_quiet_one_does_not() {
    let server = RedisServer::start();
    let quick = |url: String| {
        RedisBus::builder(url)
            .with_health_check(Duration::from_millis(10))
            .build()
    };
    let a = quick(server.url()).await.expect("bus A");
    let b = quick(server.url()).await.expect("bus B");
    let mut on_b = b.subscribe();
    // Quiet long enough for many health-check pings: a server that answers them is kept.
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.publish(&[broad("quiet")]).await.expect("publish");
    expect_targets(&mut on_b, &[broad("quiet")]).await;

    // The server drops every pub/sub connection (as a proxy or failover would).
    let killed = server
        .command(&["CLIENT", "KILL", "TYPE", "pubsub"])
        .expect("CLIENT KILL");
    assert_eq!(killed, ":2", "both buses' listening connections");
    assert_eq!(next(&mut on_b, "resync").await, BusEvent::Resync);
    a.publish(&[broad("after")]).await.expect("publish");
    expect_targets(&mut on_b, &[broad("after")]).await;
}

/// The node of `cluster` where a connection listens on `channel`, once exactly one does.
async fn listening_node(cluster: &RedisCluster, channel: &str) -> usize {
    let mut found = None;
    eventually("one node with a listener", || {
        let listening: Vec<usize> = (0..cluster.len())
            .filter(|&node| cluster.subscribers(node, channel) > 0)
            .collect();
        found = listening.first().copied().filter(|_| listening.len() == 1);
        std::future::ready(found.is_some())
    })
    .await;
    found.expect("a node")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_a_publish_reaches_instances_listening_on_other_nodes() {
    let cluster = RedisCluster::start();
    // A lists node 1 first and B node 4 first: each listens on the first seed that answers.
    let a = RedisBus::builder_cluster(cluster.urls_from(1))
        .with_channel("a:invalidate")
        .build()
        .await
        .expect("bus A");
    let b = RedisBus::builder_cluster(cluster.urls_from(4))
        .with_channel("a:invalidate")
        .build()
        .await
        .expect("bus B");
    let (mut on_a, mut on_b) = (a.subscribe(), b.subscribe());
    assert_eq!(
        cluster.subscribers(1, "a:invalidate"),
        1,
        "A listens on node 1"
    );
    assert_eq!(
        cluster.subscribers(4, "a:invalidate"),
        1,
        "B listens on node 4"
    );

    let targets = [Target::Context {
        context: "user".into(),
        params: params(json!({"user_id": 5})),
    }];
    a.publish(&targets).await.expect("publish on A");
    expect_targets(&mut on_b, &targets).await;
    expect_targets(&mut on_a, &targets).await;
    b.publish(&[broad("catalog")]).await.expect("publish on B");
    expect_targets(&mut on_a, &[broad("catalog")]).await;
    expect_targets(&mut on_b, &[broad("catalog")]).await;
    // Published by hand on a third node, one neither bus is connected to.
    let heard = cluster
        .command(5, &["PUBLISH", "a:invalidate", r#"["notes"]"#])
        .expect("PUBLISH on node 5");
    assert_eq!(heard, ":0", "node 5 has no listener of its own");
    expect_targets(&mut on_a, &[broad("notes")]).await;
    expect_targets(&mut on_b, &[broad("notes")]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_failover_the_listener_moves_resyncs_and_hears_again() {
    let mut cluster = RedisCluster::start();
    let channel = "f:invalidate";
    let quick = |nodes: Vec<String>| {
        RedisBus::builder_cluster(nodes)
            .with_channel(channel)
            .with_health_check(Duration::from_millis(200))
            .build()
    };
    let master = cluster.masters()[0];
    let a = quick(cluster.urls_from(master)).await.expect("bus A");
    let mut on_a = a.subscribe();
    assert_eq!(listening_node(&cluster, channel).await, master);
    let other = cluster.masters()[1];
    let b = quick(cluster.urls_from(other)).await.expect("bus B");
    let mut on_b = b.subscribe();
    b.publish(&[broad("before")]).await.expect("publish");
    expect_targets(&mut on_a, &[broad("before")]).await;
    expect_targets(&mut on_b, &[broad("before")]).await;

    // A's node dies; its replica takes over.
    tokio::task::block_in_place(|| cluster.kill_and_fail_over(master));
    assert_eq!(next(&mut on_a, "resync on A").await, BusEvent::Resync);
    eventually("A listening on a live node again, next to B", || {
        let listeners: u64 = (0..cluster.len())
            .map(|node| cluster.subscribers(node, channel))
            .sum();
        std::future::ready(listeners == 2)
    })
    .await;
    // Publishes work again once the cluster has settled (one may fail meanwhile), from either.
    let after = [broad("after")];
    eventually("a publish from A after the failover", || async {
        a.publish(&after).await.is_ok()
    })
    .await;
    expect_targets(&mut on_a, &after).await;
    let mut got = next(&mut on_b, "the targets on B").await;
    if got == BusEvent::Resync {
        got = next(&mut on_b, "the targets on B").await;
    }
    assert_eq!(got, BusEvent::Targets(after[..].into()));
    b.publish(&[broad("from-b")]).await.expect("publish on B");
    expect_targets(&mut on_a, &[broad("from-b")]).await;
}

/// The next targets on `receiver`, skipping resyncs.
async fn next_targets(receiver: &mut BusReceiver, what: &str) -> BusEvent {
    loop {
        match next(receiver, what).await {
            BusEvent::Resync => continue,
            event => return event,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_a_publish_while_its_node_dies_still_reaches_the_others() {
    let mut cluster = RedisCluster::start();
    let channel = "d:invalidate";
    let masters = cluster.masters();
    let bus = |first: usize| {
        RedisBus::builder_cluster(cluster.urls_from(first))
            .with_channel(channel)
            .build()
    };
    let a = bus(masters[0]).await.expect("bus A");
    let b = bus(masters[1]).await.expect("bus B");
    let (mut on_a, mut on_b) = (a.subscribe(), b.subscribe());
    assert_eq!(cluster.subscribers(masters[0], channel), 1);
    assert_eq!(cluster.subscribers(masters[1], channel), 1);

    // The node A publishes on and listens on dies; A publishes at once (which may fail).
    cluster.kill(masters[0]);
    let during = [broad("during")];
    let _ = a.publish(&during).await;
    // B listens on a healthy node, so no resync would tell it: the targets must come.
    let got = next_targets(&mut on_b, "the targets published during the failure").await;
    assert_eq!(got, BusEvent::Targets(during[..].into()));
    // A lost its listening connection: it hears them back, or gets a resync for the gap.
    let got = next(&mut on_a, "the targets or a resync on A").await;
    assert!(
        got == BusEvent::Resync || got == BusEvent::Targets(during[..].into()),
        "{got:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_a_failed_publish_still_reaches_the_others_late() {
    let cluster = RedisCluster::start();
    let channel = "l:invalidate";
    let masters = cluster.masters();
    let bus = |first: usize| {
        RedisBus::builder_cluster(cluster.urls_from(first))
            .with_channel(channel)
            .with_health_check(Duration::from_millis(200))
            .build()
    };
    let a = bus(masters[0]).await.expect("bus A");
    let b = bus(masters[1]).await.expect("bus B");
    let mut on_b = b.subscribe();
    assert_eq!(cluster.subscribers(masters[0], channel), 1);

    // A's node hangs: A's publish, on that node, times out and is reported as failed...
    cluster.pause(masters[0]);
    let late = [broad("late")];
    let failed = a.publish(&late).await;
    assert!(
        matches!(failed, Err(BusError::Unavailable(_))),
        "{failed:?}"
    );
    // ...but B, listening on a healthy node, still gets the targets once A has moved on.
    let got = next_targets(&mut on_b, "the targets of the failed publish").await;
    assert_eq!(got, BusEvent::Targets(late[..].into()));
    cluster.resume(masters[0]);
}
