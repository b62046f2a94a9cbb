//! Talking to PortaPXE over HTTP: the task, reports, uploads.

use std::io::Read;

use crate::task::Task;

pub struct Server {
    base: String,
    mac: String,
    http: ureq::Agent,
}

impl Server {
    pub fn new(server: &str, mac: &str) -> Self {
        let http = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(std::time::Duration::from_secs(10)))
            .build()
            .into();
        Self { base: format!("http://{server}"), mac: mac.to_owned(), http }
    }

    fn text(
        &self,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        what: &str,
    ) -> Result<String, String> {
        let mut response = response.map_err(|err| format!("{what}: {err}"))?;
        let status = response.status();
        let body = response.body_mut().read_to_string().unwrap_or_default();
        if status.is_success() { Ok(body) } else { Err(format!("{what}: PortaPXE answered {status}: {}", body.trim())) }
    }

    pub fn task(&self) -> Result<Task, String> {
        let url = format!("{}/imaging/task?mac={}", self.base, self.mac);
        let line = self.text(self.http.get(&url).call(), "asking for a task")?;
        Task::parse(&line)
    }

    /// A report is best effort: a seat goes on when PortaPXE cannot hear it.
    pub fn report(&self, phase: &str, detail: &str) {
        eprintln!("portapxe-agent: {phase}: {detail}");
        let url = format!("{}/imaging/report?mac={}&phase={phase}", self.base, self.mac);
        if let Err(err) = self.text(self.http.post(&url).send(detail), "reporting") {
            eprintln!("portapxe-agent: {err}");
        }
    }

    /// Streams `body` to `path` (chunked); returns PortaPXE's answer.
    pub fn upload(&self, path: &str, body: &mut dyn Read) -> Result<String, String> {
        let url = format!("{}{path}", self.base);
        self.text(self.http.put(&url).send(ureq::SendBody::from_reader(body)), &format!("sending {path}"))
    }

    pub fn post(&self, path: &str, body: &str) -> Result<String, String> {
        let url = format!("{}{path}", self.base);
        self.text(self.http.post(&url).send(body), &format!("sending {path}"))
    }
}
