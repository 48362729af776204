//! The `--metrics-bind` setting: where the master serves Prometheus text, if anywhere.
//!
//! Off by default. A TCP `HOST:PORT` only (a scraper speaks TCP), and never one of the public
//! `--bind` addresses: metrics name routes and worker pids, which are for operators.

use std::net::SocketAddr;

/// `raw` is the value and where it came from (flag, env, `.env`); empty means off.
pub fn parse_metrics_bind(
    raw: Option<(String, String)>,
    binds: &[prefork::BindAddress],
) -> Result<Option<SocketAddr>, String> {
    let Some((value, origin)) = raw else {
        return Ok(None);
    };
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let addr: SocketAddr = value
        .parse()
        .map_err(|_| format!("{origin} = {value:?}: expected HOST:PORT, e.g. 127.0.0.1:9090"))?;
    let public = binds.iter().any(|bind| {
        bind.to_string()
            .parse::<SocketAddr>()
            .is_ok_and(|b| b == addr && addr.port() != 0)
    });
    if public {
        return Err(format!(
            "{origin} = {value:?}: the metrics listener may not share a --bind address"
        ));
    }
    Ok(Some(addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(v: &str) -> Option<(String, String)> {
        Some((v.to_string(), "--metrics-bind".to_string()))
    }

    #[test]
    fn off_unless_set() {
        assert_eq!(parse_metrics_bind(None, &[]), Ok(None));
        assert_eq!(parse_metrics_bind(origin(" "), &[]), Ok(None));
    }

    #[test]
    fn accepts_host_port_and_refuses_the_public_address() {
        let public: prefork::BindAddress = "127.0.0.1:8000".parse().unwrap();
        assert_eq!(
            parse_metrics_bind(origin("127.0.0.1:9090"), std::slice::from_ref(&public)),
            Ok(Some("127.0.0.1:9090".parse().unwrap()))
        );
        assert!(parse_metrics_bind(origin("127.0.0.1:8000"), &[public]).is_err());
        assert!(parse_metrics_bind(origin("unix:/x"), &[]).is_err());
    }
}
