//! Reading the server name from a TLS ClientHello without decrypting
//! anything: enough of RFC 8446 §4.1.2 and RFC 6066 §3 to find the
//! `server_name` extension, across as many TLS records as the client split
//! the hello into, with every length checked against what is there.

/// The most ClientHello bytes waited for (hellos with post-quantum key
/// shares are a few kilobytes; 64 KiB leaves room and bounds memory).
pub const MAX_HELLO: usize = 64 * 1024;

/// What the bytes so far say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hello {
    /// Not a TLS handshake record: some other protocol.
    NotTls,
    /// A ClientHello may follow: read more.
    Incomplete,
    /// A complete ClientHello.
    Parsed {
        /// The host name it asks for, if any (as sent: not normalised).
        server_name: Option<String>,
        /// Whether it carries an encrypted ClientHello (the visible name is
        /// then only the outer, public one).
        encrypted_hello: bool,
    },
    /// A TLS handshake that is not a well-formed ClientHello.
    Malformed(&'static str),
}

const HANDSHAKE: u8 = 22;
const CLIENT_HELLO: u8 = 1;
const EXT_SERVER_NAME: u16 = 0;
const EXT_ENCRYPTED_CLIENT_HELLO: u16 = 0xfe0d;
const MAX_RECORD: usize = (1 << 14) + 256;

/// Look at the first bytes a client sent.
pub fn parse(buf: &[u8]) -> Hello {
    match buf.first() {
        None => return Hello::Incomplete,
        Some(&HANDSHAKE) => {}
        Some(_) => return Hello::NotTls,
    }
    // Join the handshake fragments of consecutive records.
    let mut message = Vec::new();
    let mut at = 0;
    loop {
        let Some(header) = buf.get(at..at + 5) else {
            return Hello::Incomplete;
        };
        if header[0] != HANDSHAKE {
            return Hello::Malformed("handshake interrupted by another record type");
        }
        if header[1] != 3 {
            return Hello::Malformed("not a TLS record version");
        }
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if len == 0 || len > MAX_RECORD {
            return Hello::Malformed("record length out of range");
        }
        let Some(fragment) = buf.get(at + 5..at + 5 + len) else {
            return Hello::Incomplete;
        };
        message.extend_from_slice(fragment);
        at += 5 + len;
        if message.len() >= 4 {
            if message[0] != CLIENT_HELLO {
                return Hello::Malformed("first handshake message is not a ClientHello");
            }
            let body_len = (usize::from(message[1]) << 16)
                | (usize::from(message[2]) << 8)
                | usize::from(message[3]);
            if body_len + 4 > MAX_HELLO {
                return Hello::Malformed("ClientHello too large");
            }
            if message.len() >= body_len + 4 {
                return client_hello(&message[4..4 + body_len]);
            }
        }
        if at >= MAX_HELLO {
            return Hello::Malformed("ClientHello too large");
        }
    }
}

/// A cursor that never reads past the end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.take(usize::from(n))
    }
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
}

fn client_hello(body: &[u8]) -> Hello {
    let mut r = Reader(body);
    let fields = (|| {
        r.take(2)?; // legacy_version
        r.take(32)?; // random
        r.vec8()?; // legacy_session_id
        r.vec16()?; // cipher_suites
        r.vec8()?; // legacy_compression_methods
        Some(())
    })();
    if fields.is_none() {
        return Hello::Malformed("truncated ClientHello");
    }
    if r.0.is_empty() {
        return Hello::Parsed {
            server_name: None,
            encrypted_hello: false,
        };
    }
    let Some(extensions) = r.vec16() else {
        return Hello::Malformed("truncated extensions");
    };
    let mut ext = Reader(extensions);
    let mut server_name = None;
    let mut encrypted_hello = false;
    while !ext.0.is_empty() {
        let (Some(kind), Some(data)) = (ext.u16(), ext.vec16()) else {
            return Hello::Malformed("truncated extension");
        };
        match kind {
            EXT_SERVER_NAME => {
                if server_name.is_some() {
                    return Hello::Malformed("two server_name extensions");
                }
                match name_from_list(data) {
                    Ok(name) => server_name = name,
                    Err(e) => return Hello::Malformed(e),
                }
            }
            EXT_ENCRYPTED_CLIENT_HELLO => encrypted_hello = true,
            _ => {}
        }
    }
    Hello::Parsed {
        server_name,
        encrypted_hello,
    }
}

fn name_from_list(data: &[u8]) -> Result<Option<String>, &'static str> {
    let mut r = Reader(data);
    let list = r.vec16().ok_or("truncated server_name list")?;
    let mut list = Reader(list);
    let mut found = None;
    while !list.0.is_empty() {
        let kind = list.u8().ok_or("truncated server name")?;
        let name = list.vec16().ok_or("truncated server name")?;
        if kind == 0 {
            if found.is_some() {
                return Err("two host names in server_name");
            }
            let name = std::str::from_utf8(name).map_err(|_| "server name is not text")?;
            if name.is_empty() || !name.is_ascii() {
                return Err("server name is empty or not ASCII");
            }
            found = Some(name.to_string());
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests;
