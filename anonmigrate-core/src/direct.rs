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
//! This side is read before the first query and becomes an SQL condition on the server's own functions
//! ([`condition`]), so the server's answer and the lock can come back in the claim's single round trip.
//! Linux only (elsewhere nothing is proven). Read with std alone: a few small text files.

use std::net::IpAddr;
use std::path::Path;

/// An address and port.
type Endpoint = (IpAddr, u16);

/// An SQL condition that holds exactly when the server's view of this connection proves it direct, built before
/// the first query from what the operating system says about this process's side; `None` when nothing can be
/// proven (not Linux, several hosts, no lock file). Evaluated by the server in the claim query, so the lock can be
/// taken in the same round trip when it holds.
pub fn condition(socket: Option<&Path>) -> Option<String> {
    match socket {
        Some(socket) => lock_file_condition(socket),
        None => tcp_condition(&own_tcp_sockets()),
    }
}

/// The postmaster's lock file beside the socket names the port and start time of the server that must answer.
fn lock_file_condition(socket: &Path) -> Option<String> {
    let mut lock = socket.as_os_str().to_owned();
    lock.push(".lock");
    let text = std::fs::read_to_string(&lock).ok()?;
    let lines: Vec<&str> = text.lines().collect();
    // Line 3: start time (whole seconds; the server takes its two clocks a moment apart); line 4: port.
    let started: i64 = lines.get(2)?.trim().parse().ok()?;
    let port: u16 = lines.get(3)?.trim().parse().ok()?;
    Some(format!(
        "(inet_client_addr() IS NULL AND abs(extract(epoch FROM pg_postmaster_start_time())::bigint - {started}) <= 1 \
          AND current_setting('port') = '{port}')"
    ))
}

/// The server sees one of this process's TCP connections, end for end (an IPv4 peer may show as `::ffff:a.b.c.d`
/// on a dual-stack socket).
fn tcp_condition(sockets: &[(Endpoint, Endpoint)]) -> Option<String> {
    let mut rows = Vec::new();
    for (local, remote) in sockets {
        for (l, r) in [(local.0, remote.0), (local.0.to_canonical(), remote.0.to_canonical()), (mapped(local.0), mapped(remote.0))] {
            let row = format!("('{l}', {}, '{r}', {})", local.1, remote.1);
            if !rows.contains(&row) {
                rows.push(row);
            }
        }
    }
    (!rows.is_empty()).then(|| {
        format!(
            "((host(inet_client_addr()), inet_client_port(), host(inet_server_addr()), inet_server_port()) IN (VALUES {}))",
            rows.join(", ")
        )
    })
}

fn mapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V6(v4.to_ipv6_mapped()),
        v6 => v6,
    }
}

/// The established TCP connections of this process: (local, remote).
fn own_tcp_sockets() -> Vec<(Endpoint, Endpoint)> {
    let Ok(fds) = std::fs::read_dir("/proc/self/fd") else { return Vec::new() };
    let inodes: Vec<u64> = fds
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter_map(|target| target.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok())
        .collect();
    let mut found = Vec::new();
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else { continue };
        for (local, remote, inode) in text.lines().skip(1).filter_map(parse_tcp_line) {
            if inodes.contains(&inode) && remote.1 != 0 {
                found.push((local, remote));
            }
        }
    }
    found
}

/// Compares addresses across families: a dual-stack socket shows `::ffff:a.b.c.d` for an IPv4 peer.
#[cfg(test)]
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

    /// A real connection of this process is found and becomes a condition naming both of its ends.
    #[test]
    fn finds_its_own_tcp_sockets() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (local, remote) = (client.local_addr().unwrap(), client.peer_addr().unwrap());
        let pair = ((local.ip(), local.port()), (remote.ip(), remote.port()));
        let sockets = own_tcp_sockets();
        assert_eq!(sockets.contains(&pair), cfg!(target_os = "linux"), "{sockets:?}");
        let sql = tcp_condition(&[pair]).unwrap();
        assert!(sql.contains(&format!("('127.0.0.1', {}, '127.0.0.1', {})", local.port(), remote.port())), "{sql}");
        assert!(sql.contains("'::ffff:127.0.0.1'"), "{sql}");
        assert_eq!(tcp_condition(&[]), None);
    }

    #[test]
    fn a_unix_socket_needs_the_servers_lock_file() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join(".s.PGSQL.5433");
        assert_eq!(condition(Some(&socket)), None, "no lock file: a pooler's socket");
        std::fs::write(dir.path().join(".s.PGSQL.5433.lock"), "11601\n/data\n1796665561\n5433\n/sock\n").unwrap();
        let sql = condition(Some(&socket)).unwrap();
        assert!(sql.contains("- 1796665561) <= 1") && sql.contains("= '5433'"), "{sql}");
    }
}
