//! The plugin, `guests/src/plugin.c`, and its protocol: what the host hands it, what it must
//! answer, and the check of every answer. Both kinds of host (async and thread per guest)
//! use this.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `guests/src/plugin.c` as `guests/build.sh` built it.
pub const PLUGIN: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../guests/plugin.wasm"
));

/// The imports' module name in the plugin.
pub const MODULE: &str = "host";

/// The length of the plugin's message: a greeting padded with dots.
const MESSAGE_LEN: usize = 64;

/// The longest sleep the host grants a plugin, so that a wrong argument fails its request
/// instead of stalling its guest.
const MAX_SLEEP_MS: i32 = 1_000;

/// What `host.request` returns to the plugin, as JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub id: u32,
    pub user: String,
}

/// What the plugin answers through `host.respond`, as JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub id: u32,
    pub user: String,
    /// How many bytes came back from the echo.
    pub echoed: usize,
    /// FNV-1a of those bytes, 16 hex digits.
    pub hash: String,
}

/// A store's data while the plugin handles one request: the guest's connection (lent to
/// the store for the request), the request, and the reply once the plugin gave it.
pub struct Plugin<C> {
    pub connection: C,
    pub request: Request,
    pub reply: Option<Reply>,
}

impl<C> Plugin<C> {
    pub fn new(connection: C, request: Request) -> Plugin<C> {
        Plugin {
            connection,
            request,
            reply: None,
        }
    }

    /// Keeps the plugin's reply; a second one is an error.
    pub fn respond(&mut self, reply: Reply) -> wasmtime::Result<()> {
        if self.reply.is_some() {
            wasmtime::bail!("the plugin responded twice");
        }
        self.reply = Some(reply);
        Ok(())
    }
}

impl Request {
    /// Request `id`, sent by guest number `guest`.
    pub fn new(guest: usize, id: u32) -> Request {
        Request {
            id,
            user: format!("user-{guest}"),
        }
    }

    /// The message the plugin sends for this request (see `build_message` in plugin.c).
    fn message(&self) -> Vec<u8> {
        let mut message = format!("hello from {}, request {} ", self.user, self.id).into_bytes();
        message.resize(MESSAGE_LEN, b'.');
        message
    }
}

/// How long `host.sleep_ms(ms)` sleeps, or an error for a wrong `ms`.
pub fn sleep_duration(ms: i32) -> wasmtime::Result<Duration> {
    if !(0..=MAX_SLEEP_MS).contains(&ms) {
        wasmtime::bail!("the plugin asked to sleep {ms} ms, not within 0..={MAX_SLEEP_MS}");
    }
    Ok(Duration::from_millis(ms as u64))
}

/// What the plugin answered: `handle`'s status (0 when it replied) and its reply.
pub struct Answer {
    pub status: i32,
    pub reply: Option<Reply>,
}

/// Checks the plugin's answer to `request`: the reply names the request, and its hash is
/// that of the message the plugin must have sent, so the echo went through whole.
pub fn check(request: &Request, answer: &Answer) -> Result<(), String> {
    let id = request.id;
    match answer.status {
        0 => {}
        1 => {
            return Err(format!(
                "request {id}: the plugin could not read its request"
            ));
        }
        2 => {
            return Err(format!(
                "request {id}: the plugin's reply did not fit its buffer"
            ));
        }
        other => return Err(format!("request {id}: the plugin returned {other}")),
    }
    let reply = answer
        .reply
        .as_ref()
        .ok_or_else(|| format!("request {id}: the plugin returned 0 without a reply"))?;
    let expected = Reply {
        id,
        user: request.user.clone(),
        echoed: MESSAGE_LEN,
        hash: format!("{:016x}", fnv1a(&request.message())),
    };
    if *reply != expected {
        return Err(format!(
            "request {id}: the plugin answered {reply:?}, expected {expected:?}"
        ));
    }
    Ok(())
}

/// FNV-1a, 64 bits, as the plugin computes it.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn right_answer(request: &Request) -> Answer {
        Answer {
            status: 0,
            reply: Some(Reply {
                id: request.id,
                user: request.user.clone(),
                echoed: MESSAGE_LEN,
                hash: format!("{:016x}", fnv1a(&request.message())),
            }),
        }
    }

    #[test]
    fn the_message_is_the_padded_greeting() {
        let message = Request::new(3, 17).message();
        assert_eq!(message.len(), MESSAGE_LEN);
        assert!(message.starts_with(b"hello from user-3, request 17 ...."));
        // The longest user and id the demo makes still fit.
        let longest = Request::new(usize::MAX, u32::MAX);
        assert!(format!("hello from {}, request {} ", longest.user, longest.id).len() <= 64);
    }

    #[test]
    fn fnv1a_matches_the_reference_values() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn a_right_answer_passes_and_every_wrong_one_fails() {
        let request = Request::new(3, 17);
        assert_eq!(check(&request, &right_answer(&request)), Ok(()));
        let wrong = |change: fn(&mut Answer)| {
            let mut answer = right_answer(&request);
            change(&mut answer);
            check(&request, &answer).unwrap_err()
        };
        assert!(wrong(|a| a.status = 1).contains("could not read its request"));
        assert!(wrong(|a| a.reply = None).contains("without a reply"));
        assert!(wrong(|a| a.reply.as_mut().unwrap().id = 18).contains("expected"));
        assert!(wrong(|a| a.reply.as_mut().unwrap().user.push('x')).contains("expected"));
        assert!(wrong(|a| a.reply.as_mut().unwrap().echoed = 63).contains("expected"));
        assert!(wrong(|a| a.reply.as_mut().unwrap().hash.clear()).contains("expected"));
    }

    #[test]
    fn sleeps_are_bounded() {
        assert_eq!(sleep_duration(10).unwrap(), Duration::from_millis(10));
        assert!(sleep_duration(-1).is_err());
        assert!(sleep_duration(MAX_SLEEP_MS + 1).is_err());
    }

    #[test]
    fn a_second_reply_is_an_error() {
        let request = Request::new(0, 0);
        let mut plugin = Plugin::new((), request.clone());
        let reply = right_answer(&request).reply.unwrap();
        plugin.respond(reply.clone()).unwrap();
        assert!(plugin.respond(reply).is_err());
    }
}
