//! Kafka's command names: `kafka-topics`, `kafka-topics.sh`, … run the matching `sluice`
//! subcommand when the binary is called by that name (packaging installs them as links
//! to `sluice`), so scripts written for Kafka's tools work unchanged.

use std::ffi::OsString;
use std::path::Path;

/// Kafka's command name (without `.sh`) → the `sluice` subcommand it runs.
pub const KAFKA_COMMANDS: &[(&str, &str)] = &[
    ("kafka-topics", "topics"),
    ("kafka-console-producer", "console-producer"),
    ("kafka-console-consumer", "console-consumer"),
    ("kafka-consumer-groups", "consumer-groups"),
    ("kafka-configs", "configs"),
    ("kafka-delete-records", "delete-records"),
    ("kafka-dump-log", "dump-log"),
    ("kafka-get-offsets", "get-offsets"),
    ("kafka-storage", "storage"),
    ("kafka-metadata-quorum", "metadata-quorum"),
    ("kafka-leader-election", "leader-election"),
    ("kafka-log-dirs", "log-dirs"),
    ("kafka-reassign-partitions", "reassign-partitions"),
];

/// The subcommand a binary called `argv0` stands for, if its name is one of Kafka's.
pub fn subcommand_for(argv0: &OsString) -> Option<&'static str> {
    let name = Path::new(argv0).file_name()?.to_str()?;
    let name = name.strip_suffix(".sh").unwrap_or(name);
    KAFKA_COMMANDS
        .iter()
        .find(|(kafka, _)| *kafka == name)
        .map(|(_, sluice)| *sluice)
}

/// The arguments as `sluice` parses them: `kafka-topics --list …` becomes
/// `sluice topics --list …`.
pub fn arguments(mut args: Vec<OsString>) -> Vec<OsString> {
    let Some(subcommand) = args.first().and_then(subcommand_for) else {
        return args;
    };
    args[0] = OsString::from("sluice");
    args.insert(1, OsString::from(subcommand));
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(args: &[&str], expected: &[&str]) {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        let got = arguments(args);
        let expected: Vec<OsString> = expected.iter().map(OsString::from).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn kafka_names_dispatch_to_subcommands() {
        check(
            &["/usr/bin/kafka-topics.sh", "--list"],
            &["sluice", "topics", "--list"],
        );
        check(
            &["kafka-configs", "--describe"],
            &["sluice", "configs", "--describe"],
        );
        check(
            &["kafka-storage", "format"],
            &["sluice", "storage", "format"],
        );
        check(
            &["kafka-leader-election.sh", "--all-topic-partitions"],
            &["sluice", "leader-election", "--all-topic-partitions"],
        );
        check(
            &["kafka-metadata-quorum", "describe"],
            &["sluice", "metadata-quorum", "describe"],
        );
        check(&["sluice", "topics"], &["sluice", "topics"]);
        check(&["/opt/kafka-topicsx"], &["/opt/kafka-topicsx"]);
        check(&[], &[]);
    }
}
