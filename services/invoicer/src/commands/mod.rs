//! One module per subcommand.

pub(crate) mod batch;
pub(crate) mod config;
pub(crate) mod demo;
pub(crate) mod import;
pub(crate) mod log;
pub(crate) mod notifier;
pub(crate) mod preview;
pub(crate) mod resend;
pub(crate) mod schedule;
pub(crate) mod serve;
pub(crate) mod token;

/// Returns who runs a command that records its actor (`resend`, `notifier set`): `--actor`,
/// else `$USER` or `$LOGNAME`, else the account of the process's user id in `/etc/passwd`
/// (a container shell often sets neither variable), else `uid N`. Without `/proc` it is empty,
/// so that the server records the caller it authenticated, or rejects a notifier change for a
/// missing actor.
pub(crate) fn actor(explicit: Option<String>) -> String {
    let from_env = |name: &str| std::env::var(name).ok();
    let uid = std::fs::metadata("/proc/self")
        .ok()
        .map(|metadata| std::os::unix::fs::MetadataExt::uid(&metadata));
    let passwd = || std::fs::read_to_string("/etc/passwd").ok();
    pick_actor(explicit, from_env, uid, passwd)
}

fn pick_actor(
    explicit: Option<String>,
    env: impl Fn(&str) -> Option<String>,
    uid: Option<u32>,
    passwd: impl FnOnce() -> Option<String>,
) -> String {
    let non_empty =
        |value: Option<String>| value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    if let Some(actor) = non_empty(explicit)
        .or_else(|| non_empty(env("USER")))
        .or_else(|| non_empty(env("LOGNAME")))
    {
        return actor;
    }
    let Some(uid) = uid else {
        return String::new();
    };
    let account = passwd().and_then(|passwd| {
        passwd.lines().find_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?;
            let id = fields.nth(1)?;
            (id.parse() == Ok(uid) && !name.is_empty()).then(|| name.to_owned())
        })
    });
    account.unwrap_or_else(|| format!("uid {uid}"))
}

#[cfg(test)]
mod tests {
    use super::pick_actor;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\nann:x:1000:1000::/home/ann:/bin/sh\n";

    #[test]
    fn actor_prefers_flag_then_env() {
        let env = |name: &str| (name == "LOGNAME").then(|| "logname".to_owned());
        let passwd = || Some(PASSWD.to_owned());
        assert_eq!(
            pick_actor(Some("jane".into()), env, Some(0), passwd),
            "jane"
        );
        assert_eq!(
            pick_actor(Some("  ".into()), env, Some(0), passwd),
            "logname"
        );
    }

    #[test]
    fn actor_falls_back_to_uid_account() {
        let env = |_: &str| None;
        let passwd = || Some(PASSWD.to_owned());
        assert_eq!(pick_actor(None, env, Some(1000), passwd), "ann");
        assert_eq!(pick_actor(None, env, Some(0), passwd), "root");
        assert_eq!(pick_actor(None, env, Some(4242), passwd), "uid 4242");
        assert_eq!(pick_actor(None, env, None, passwd), "");
    }
}
