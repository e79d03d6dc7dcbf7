//! Proof, from the operating system's own records, that a connection reaches the PostgreSQL backend that answers
//! it with nothing in between: then no connection pooler can be there and its (costly) detection with a second
//! client connection is skipped. Anything not proven this way gets the full detection (see `pooler`).
//!
//! - TCP: the server's view of the connection (client address and port, its own address and port) is exactly the
//!   four-tuple of a socket this process holds open (`/proc/self/net/tcp*` and `/proc/self/fd`). A pooler
//!   terminates the client's TCP connection and opens its own to the server, so the server would see the
//!   pooler's socket instead.
//! - Unix socket: the socket file the URL names has PostgreSQL's lock file beside it (`.s.PGSQL.<port>.lock`,
//!   written by the postmaster and removed at shutdown), naming the port and the start time of the very server
//!   that answers. A pooler's socket has no such file.
//!
//! Linux only (elsewhere nothing is proven). Read with std alone: a few small text files.

use std::net::IpAddr;
use std::path::Path;

/// An address and port.
type Endpoint = (IpAddr, u16);

/// What the server reports about the connection it serves.
#[derive(Debug, Clone, Default)]
pub struct ServerView {
    /// `host(inet_client_addr())`: `None` over a Unix socket.
    pub client_addr: Option<String>,
    pub client_port: Option<i32>,
    pub server_addr: Option<String>,
    pub server_port: Option<i32>,
    /// `pg_postmaster_start_time()` in whole seconds since the epoch.
    pub started: i64,
    /// `current_setting('port')`.
    pub port: String,
}

/// Whether this connection, made through a Unix socket file `socket` (when the URL names one), provably reaches
/// the server directly.
pub fn proven(view: &ServerView, socket: Option<&Path>) -> bool {
    match (&view.client_addr, view.client_port, &view.server_addr, view.server_port) {
        (Some(client), Some(client_port), Some(server), Some(server_port)) => {
            let (Ok(client), Ok(server)) = (client.parse::<IpAddr>(), server.parse::<IpAddr>()) else { return false };
            let (Ok(client_port), Ok(server_port)) = (u16::try_from(client_port), u16::try_from(server_port)) else {
                return false;
            };
            own_tcp_socket((client, client_port), (server, server_port))
        }
        (None, None, None, None) => socket.is_some_and(|socket| lock_file_matches(socket, view)),
        _ => false,
    }
}

/// The postmaster's lock file beside the socket names the port and start time of the server that answers.
fn lock_file_matches(socket: &Path, view: &ServerView) -> bool {
    let mut lock = socket.as_os_str().to_owned();
    lock.push(".lock");
    let Ok(text) = std::fs::read_to_string(&lock) else { return false };
    let lines: Vec<&str> = text.lines().collect();
    // Line 3: start time (seconds; the server takes its two clocks a moment apart); line 4: port.
    let started = lines.get(2).and_then(|l| l.trim().parse::<i64>().ok());
    let port = lines.get(3).map(|l| l.trim());
    started.is_some_and(|s| (s - view.started).abs() <= 1) && port == Some(view.port.trim())
}

/// A TCP socket of this process connects `local` to `remote`.
fn own_tcp_socket(local: Endpoint, remote: Endpoint) -> bool {
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else { return false };
    let inodes: Vec<u64> = fds
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter_map(|target| target.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok())
        .collect();
    ["/proc/self/net/tcp", "/proc/self/net/tcp6"].iter().any(|table| {
        std::fs::read_to_string(table)
            .is_ok_and(|text| text.lines().skip(1).filter_map(parse_tcp_line).any(|(l, r, inode)| {
                same(l, local) && same(r, remote) && inodes.contains(&inode)
            }))
    })
}

/// Compares addresses across families: a dual-stack socket shows `::ffff:a.b.c.d` for an IPv4 peer.
fn same(a: Endpoint, b: Endpoint) -> bool {
    a.1 == b.1 && a.0.to_canonical() == b.0.to_canonical()
}

/// One row of `/proc/net/tcp[6]`: local and remote address, inode.
fn parse_tcp_line(line: &str) -> Option<(Endpoint, Endpoint, u64)> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let local = parse_endpoint(fields.get(1)?)?;
    let remote = parse_endpoint(fields.get(2)?)?;
    let inode = fields.get(9)?.parse().ok()?;
    Some((local, remote, inode))
}

/// `0100007F:1538`: the address as the kernel's 32-bit words printed in host byte order, the port in hex.
fn parse_endpoint(text: &str) -> Option<Endpoint> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let mut bytes = Vec::with_capacity(16);
    for chunk in addr.as_bytes().chunks(8) {
        let word = u32::from_str_radix(std::str::from_utf8(chunk).ok()?, 16).ok()?;
        bytes.extend_from_slice(&word.to_ne_bytes());
    }
    let ip = match bytes.len() {
        4 => IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?),
        16 => IpAddr::from(<[u8; 16]>::try_from(bytes).ok()?),
        _ => return None,
    };
    Some((ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kernel_socket_tables() {
        let v4 = "   0: 0100007F:1538 0100007F:D431 01 00000000:00000000 00:00000000 00000000   107        0 91512 1 0000000000000000 20 4 30 10 -1";
        let (local, remote, inode) = parse_tcp_line(v4).unwrap();
        if cfg!(target_endian = "little") {
            assert_eq!(local, ("127.0.0.1".parse().unwrap(), 5432));
            assert_eq!(remote, ("127.0.0.1".parse().unwrap(), 54321));
        }
        assert_eq!(inode, 91512);
        let v6 = "   1: 00000000000000000000000001000000:1538 0000000000000000FFFF00000100007F:D431 01 00000000:00000000 00:00000000 00000000   0 0 4242 1";
        let (local, remote, _) = parse_tcp_line(v6).unwrap();
        if cfg!(target_endian = "little") {
            assert_eq!(local, ("::1".parse().unwrap(), 5432));
            assert!(same(remote, ("127.0.0.1".parse().unwrap(), 54321)), "{remote:?}");
        }
        assert!(parse_tcp_line("  sl  local_address rem_address   st").is_none());
    }

    /// A real connection of this process is found, a made-up one is not.
    #[test]
    fn finds_its_own_tcp_socket_only() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (local, remote) = (client.local_addr().unwrap(), client.peer_addr().unwrap());
        let found = own_tcp_socket((local.ip(), local.port()), (remote.ip(), remote.port()));
        assert_eq!(found, cfg!(target_os = "linux"));
        assert!(!own_tcp_socket((local.ip(), local.port()), (remote.ip(), remote.port().wrapping_add(1))));
    }

    #[test]
    fn a_unix_socket_needs_the_servers_lock_file() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join(".s.PGSQL.5433");
        let view = ServerView { started: 1_796_665_561, port: "5433".into(), ..ServerView::default() };
        assert!(!proven(&view, Some(&socket)), "no lock file: a pooler's socket");
        std::fs::write(dir.path().join(".s.PGSQL.5433.lock"), "11601\n/data\n1796665561\n5433\n/sock\n").unwrap();
        assert!(proven(&view, Some(&socket)));
        assert!(!proven(&view, None), "the URL names no socket file");
        let other = ServerView { started: 1_796_000_000, ..view.clone() };
        assert!(!proven(&other, Some(&socket)), "another server's lock file");
    }
}
