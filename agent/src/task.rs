//! The task line PortaPXE answers `GET /imaging/task` with (the engine's `Task` in words).

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Task {
    Capture { token: String, name: String },
    Restore { id: String, port_base: u16, name: String },
    Nothing,
}

impl Task {
    pub fn parse(line: &str) -> Result<Self, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["capture", token, name] => Ok(Self::Capture { token: (*token).into(), name: (*name).into() }),
            ["restore", id, port, name] => {
                let port_base = port.parse().map_err(|_| format!("bad port base in task {line:?}"))?;
                Ok(Self::Restore { id: (*id).into(), port_base, name: (*name).into() })
            }
            ["none"] => Ok(Self::Nothing),
            _ => Err(format!("PortaPXE answered a task this agent does not know: {line:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_lines_are_read() {
        assert_eq!(Task::parse("capture abc lab\n"), Ok(Task::Capture { token: "abc".into(), name: "lab".into() }));
        assert_eq!(
            Task::parse("restore 0f 9000 lab"),
            Ok(Task::Restore { id: "0f".into(), port_base: 9000, name: "lab".into() })
        );
        assert_eq!(Task::parse("none"), Ok(Task::Nothing));
        assert!(Task::parse("format disk").is_err());
        assert!(Task::parse("restore x notaport y").is_err());
    }
}
