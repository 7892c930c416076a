//! `--user NAME`: give up root after the device is open.
//!
//! The user is looked up in `/etc/passwd` and its supplementary groups in
//! `/etc/group` (no libc `getpwnam`: rustix has none, and the daemon only
//! needs the numbers). Invariant: this runs while the process has exactly
//! one thread — Linux's setuid/setgid/setgroups system calls change only the
//! calling thread, so every thread started afterwards inherits the dropped
//! credentials and no thread keeps root.

use std::io;

use rustix::thread::{Gid, Uid, set_thread_gid, set_thread_groups, set_thread_uid};

/// A user's numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

/// Finds `name` (or a numeric uid) in passwd/group text.
pub fn lookup_in(name: &str, passwd: &str, group: &str) -> Option<User> {
    let entry = passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        let (uid, gid) = (
            f.get(2)?.parse::<u32>().ok()?,
            f.get(3)?.parse::<u32>().ok()?,
        );
        (f[0] == name || name.parse::<u32>() == Ok(uid)).then(|| (f[0].to_owned(), uid, gid))
    })?;
    let (user, uid, gid) = entry;
    let mut groups = vec![gid];
    for line in group.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if let (Some(g), Some(members)) = (f.get(2).and_then(|g| g.parse::<u32>().ok()), f.get(3))
            && members.split(',').any(|m| m.trim() == user)
            && !groups.contains(&g)
        {
            groups.push(g);
        }
    }
    Some(User {
        name: user,
        uid,
        gid,
        groups,
    })
}

/// Looks `name` up in the system's files.
pub fn lookup(name: &str) -> io::Result<User> {
    let passwd = std::fs::read_to_string("/etc/passwd")?;
    let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
    lookup_in(name, &passwd, &group).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("no user `{name}` in /etc/passwd"),
        )
    })
}

/// Drops to `user`: groups, then gid, then uid (the order that still has
/// the privilege for each step). Call while single-threaded.
pub fn drop_to(user: &User) -> io::Result<()> {
    let groups: Vec<Gid> = user.groups.iter().map(|&g| Gid::from_raw(g)).collect();
    let fail = |what: &str, e: rustix::io::Errno| {
        io::Error::other(format!(
            "cannot drop privileges to {} ({what}): {e}",
            user.name
        ))
    };
    set_thread_groups(&groups).map_err(|e| fail("setgroups", e))?;
    set_thread_gid(Gid::from_raw(user.gid)).map_err(|e| fail("setgid", e))?;
    set_thread_uid(Uid::from_raw(user.uid)).map_err(|e| fail("setuid", e))?;
    // Regaining root must now fail; if it does not, the drop did not happen.
    if user.uid != 0 && set_thread_uid(Uid::ROOT).is_ok() {
        return Err(io::Error::other(
            "setuid(0) still succeeds after dropping privileges",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\nbroken:x:notanumber:1::/:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nnogroup:x:65534:\nnet:x:120:alice,nobody\n";

    #[test]
    fn finds_user_by_name_with_supplementary_groups() {
        let u = lookup_in("nobody", PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid), (65534, 65534));
        assert_eq!(u.groups, vec![65534, 120]);
    }

    #[test]
    fn finds_user_by_number_and_rejects_unknown_or_broken() {
        assert_eq!(lookup_in("0", PASSWD, GROUP).unwrap().name, "root");
        assert!(lookup_in("mallory", PASSWD, GROUP).is_none());
        assert!(lookup_in("broken", PASSWD, GROUP).is_none());
    }
}
