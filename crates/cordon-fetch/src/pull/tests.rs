use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use super::{FetchError, PullOptions, Pulled, Puller};

/// A loopback server answering each connection by `answer(request head)`;
/// `None` keeps the connection open without a word.
async fn server(answer: fn(&str) -> Option<Vec<u8>>) -> url::Url {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                match answer(&String::from_utf8_lossy(&head)) {
                    Some(reply) => {
                        let _ = socket.write_all(&reply).await;
                    }
                    None => tokio::time::sleep(Duration::from_secs(60)).await,
                }
            });
        }
    });
    format!("http://{addr}/api/v1/policy/bundle")
        .parse()
        .unwrap()
}

fn options(url: url::Url) -> PullOptions {
    PullOptions {
        timeout: Duration::from_millis(500),
        max_bytes: 1024,
        token: Some("s3cret".to_string()),
        ..PullOptions::new(url)
    }
}

#[tokio::test(flavor = "current_thread")]
async fn an_unchanged_document_costs_a_304_and_a_changed_one_comes_whole() {
    let url = server(|head| {
        assert!(head.contains("authorization: Bearer s3cret"), "{head}");
        Some(if head.contains("if-none-match: \"v1\"") {
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 0\r\n\r\n".to_vec()
        } else {
            b"HTTP/1.1 200 OK\r\nETag: \"v1\"\r\nContent-Length: 5\r\n\r\nhello".to_vec()
        })
    })
    .await;
    let mut puller = Puller::new(options(url)).unwrap();
    assert_eq!(puller.poll().await.unwrap(), Pulled::New(b"hello".to_vec()));
    assert_eq!(puller.poll().await.unwrap(), Pulled::NotModified);
    puller.forget();
    assert_eq!(puller.poll().await.unwrap(), Pulled::New(b"hello".to_vec()));
}

#[tokio::test(flavor = "current_thread")]
async fn errors_oversized_bodies_and_silence_are_failures_with_their_reason() {
    let refused = server(|_| {
        Some(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 12\r\n\r\nnot allowed\n".to_vec())
    })
    .await;
    let e = Puller::new(options(refused))
        .unwrap()
        .poll()
        .await
        .unwrap_err();
    assert!(
        matches!(e, FetchError::Status { status: 403, ref message, .. } if message == "not allowed"),
        "{e}"
    );

    let huge = server(|_| {
        let mut r = b"HTTP/1.1 200 OK\r\nContent-Length: 4096\r\n\r\n".to_vec();
        r.extend(std::iter::repeat_n(b'x', 4096));
        Some(r)
    })
    .await;
    let e = Puller::new(options(huge))
        .unwrap()
        .poll()
        .await
        .unwrap_err();
    assert!(e.to_string().contains("at most 1024 bytes"), "{e}");

    let silent = server(|_| None).await;
    let e = Puller::new(options(silent))
        .unwrap()
        .poll()
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no answer within"), "{e}");

    assert!(Puller::new(options("ftp://x/".parse().unwrap())).is_err());
    assert!(Puller::new(options("http://u:p@x/".parse().unwrap())).is_err());
    let debug = format!("{:?}", options("http://x/".parse().unwrap()));
    assert!(!debug.contains("s3cret"), "{debug}");
}
