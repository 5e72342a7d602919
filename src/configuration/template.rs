//! Writes a configuration directory for programs that generate one instead of shipping one
//! (the load harness, the integration tests), in the layout `Settings::load` reads: so that
//! the layout is spelled once, here, next to the loader.

use std::path::Path;

/// A whole configuration directory.
#[derive(Debug, Clone)]
pub struct ConfigTemplate {
    pub project: String,
    /// The overlay's name: `<environment>.yaml` is written beside base.yaml.
    pub environment: String,
    /// 0 lets the service pick a free port (it logs the one it bound).
    pub port: u16,
    pub shutdown_deadline_secs: u64,
    /// A tracing filter, e.g. `info` or `warn,mesh_ingest::app=info`.
    pub log_level: String,
    pub objects: Vec<ObjectTemplate>,
}

/// One object file: the names every object needs, then any further YAML as written.
#[derive(Debug, Clone)]
pub struct ObjectTemplate {
    pub name: String,
    pub subscription: String,
    pub topic: Option<String>,
    pub ingest_table: String,
    pub dead_letter_table: String,
    /// More of the object file (envelope, batch, limits, semantic, …).
    pub yaml: String,
}

impl ConfigTemplate {
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir.join("objects"))?;
        std::fs::write(
            dir.join("base.yaml"),
            format!(
                "application:\n  host: 127.0.0.1\n  port: {}\n  shutdown_deadline_secs: {}\n\
                 gcp:\n  project: {}\nlog:\n  format: json\n  level: \"{}\"\n",
                self.port, self.shutdown_deadline_secs, self.project, self.log_level
            ),
        )?;
        std::fs::write(
            dir.join(format!("{}.yaml", self.environment)),
            format!("log:\n  level: \"{}\"\n", self.log_level),
        )?;
        for o in &self.objects {
            let topic = o
                .topic
                .as_ref()
                .map(|t| format!("topic: {t}\n"))
                .unwrap_or_default();
            std::fs::write(
                dir.join("objects").join(format!("{}.yaml", o.name)),
                format!(
                    "name: {}\nsubscription: {}\n{topic}ingest_table: {}\ndead_letter_table: {}\n{}",
                    o.name, o.subscription, o.ingest_table, o.dead_letter_table, o.yaml
                ),
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::configuration::Settings;

    #[test]
    fn a_written_directory_loads() {
        let dir = tempfile::tempdir().unwrap();
        let template = ConfigTemplate {
            project: "p".into(),
            environment: "gen".into(),
            port: 0,
            shutdown_deadline_secs: 7,
            log_level: "warn,mesh_ingest::app=info".into(),
            objects: vec![ObjectTemplate {
                name: "orders".into(),
                subscription: "orders-sub".into(),
                topic: Some("orders-topic".into()),
                ingest_table: "d.events".into(),
                dead_letter_table: "d.dead".into(),
                yaml: "envelope:\n  format: json\nstreams: 3\n".into(),
            }],
        };
        template.write(dir.path()).unwrap();
        let s = Settings::load(dir.path(), Some("gen")).unwrap();
        assert_eq!(s.application.shutdown_deadline_secs, 7);
        assert_eq!(s.log.level, "warn,mesh_ingest::app=info");
        assert_eq!(s.objects[0].streams, 3);
        assert_eq!(
            s.objects[0].topic.as_deref(),
            Some("projects/p/topics/orders-topic")
        );
    }
}
