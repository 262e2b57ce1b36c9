//! kafka-consumer-groups' tables: column widths grow to the longest cell (with Kafka's
//! minimums), the last column is not padded, and a blank line comes first.

use sluice_net::client::GroupDescription;

/// `header` and `cells` as Kafka prints them.
pub fn render(header: &[&str], minimum: &[usize], cells: &[Vec<String>]) -> String {
    assert_eq!(header.len(), minimum.len());
    let last = header.len() - 1;
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            let longest = cells.iter().map(|c| c[i].len()).max().unwrap_or(0);
            longest.max(header[i].len()).max(minimum[i])
        })
        .collect();
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| match i == last {
                true => c.clone(),
                false => format!("{c:<w$}", w = widths[i]),
            })
            .collect();
        padded.join(" ").trim_end().to_string() + "\n"
    };
    let mut out = String::from("\n");
    out.push_str(&line(
        &header.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
    ));
    for row in cells {
        out.push_str(&line(row));
    }
    out
}

/// `--describe --state`: one line for the group.
pub fn state(description: &GroupDescription, coordinator: &str) -> String {
    let strategy = match description.protocol.as_str() {
        "" => "-".to_string(),
        p => p.to_string(),
    };
    let row = vec![
        description.group_id.clone(),
        coordinator.to_string(),
        strategy,
        description.state.clone(),
        description.members.len().to_string(),
    ];
    render(
        &[
            "GROUP",
            "COORDINATOR (ID)",
            "ASSIGNMENT-STRATEGY",
            "STATE",
            "#MEMBERS",
        ],
        &[15, 25, 20, 15, 0],
        &[row],
    )
}

/// `--describe --members [--verbose]`: one line per member (with Kafka's
/// GROUP-INSTANCE-ID column when a member is static).
pub fn members(description: &GroupDescription, verbose: bool) -> String {
    let statics = description
        .members
        .iter()
        .any(|m| m.group_instance_id.is_some());
    let mut rows: Vec<Vec<String>> = description
        .members
        .iter()
        .map(|m| {
            let held: usize = m.assignment.values().map(Vec::len).sum();
            let mut row = vec![description.group_id.clone(), m.member_id.clone()];
            if statics {
                row.push(m.group_instance_id.clone().unwrap_or_else(|| "-".into()));
            }
            row.extend([m.client_host.clone(), m.client_id.clone(), held.to_string()]);
            if verbose {
                let assignment: Vec<String> = m
                    .assignment
                    .iter()
                    .map(|(topic, partitions)| {
                        let mut sorted = partitions.clone();
                        sorted.sort_unstable();
                        let list: Vec<String> = sorted.iter().map(i32::to_string).collect();
                        format!("{topic}({})", list.join(","))
                    })
                    .collect();
                row.push(match assignment.is_empty() {
                    true => "-".to_string(),
                    false => assignment.join(","),
                });
            }
            row
        })
        .collect();
    rows.sort();
    let mut header = vec!["GROUP", "CONSUMER-ID"];
    let mut minimum = vec![15, 15];
    if statics {
        header.push("GROUP-INSTANCE-ID");
        minimum.push(17);
    }
    header.extend(["HOST", "CLIENT-ID", "#PARTITIONS"]);
    minimum.extend([15, 15, 0]);
    if verbose {
        header.push("ASSIGNMENT");
        *minimum.last_mut().expect("#PARTITIONS") = 15;
        minimum.push(0);
    }
    if rows.is_empty() {
        return format!(
            "\nConsumer group '{}' has no active members.\n",
            description.group_id
        );
    }
    render(&header, &minimum, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_net::client::GroupMemberDescription;

    fn group() -> GroupDescription {
        let member = |id: &str, assignment: &[(&str, &[i32])]| GroupMemberDescription {
            member_id: id.to_string(),
            group_instance_id: None,
            client_id: "cli".to_string(),
            client_host: "/127.0.0.1".to_string(),
            assignment: assignment
                .iter()
                .map(|(t, p)| (t.to_string(), p.to_vec()))
                .collect(),
        };
        GroupDescription {
            group_id: "billing".to_string(),
            state: "Stable".to_string(),
            protocol_type: "consumer".to_string(),
            protocol: "range".to_string(),
            members: vec![
                member("m-2", &[("orders", &[2])]),
                member("m-1", &[("orders", &[0, 1]), ("audit", &[0])]),
            ],
        }
    }

    #[test]
    fn state_line() {
        assert_eq!(
            state(&group(), "127.0.0.1:9092 (1)"),
            "\nGROUP           COORDINATOR (ID)          ASSIGNMENT-STRATEGY  STATE           #MEMBERS\n\
             billing         127.0.0.1:9092 (1)        range                Stable          2\n"
        );
    }

    #[test]
    fn members_lines_with_and_without_assignments() {
        assert_eq!(
            members(&group(), false),
            "\nGROUP           CONSUMER-ID     HOST            CLIENT-ID       #PARTITIONS\n\
             billing         m-1             /127.0.0.1      cli             3\n\
             billing         m-2             /127.0.0.1      cli             1\n"
        );
        let verbose = members(&group(), true);
        assert!(
            verbose.contains("#PARTITIONS     ASSIGNMENT\n"),
            "{verbose}"
        );
        assert!(
            verbose.ends_with("1               orders(2)\n"),
            "{verbose}"
        );
        assert!(verbose.contains("audit(0),orders(0,1)"), "{verbose}");
    }

    #[test]
    fn static_members_get_their_column() {
        let mut g = group();
        g.members[0].group_instance_id = Some("box-2".into());
        let table = members(&g, false);
        assert!(
            table.contains("CONSUMER-ID     GROUP-INSTANCE-ID HOST"),
            "{table}"
        );
        assert!(
            table.contains("m-2             box-2             /127.0.0.1"),
            "{table}"
        );
        assert!(
            table.contains("m-1             -                 /127.0.0.1"),
            "{table}"
        );
    }
}
