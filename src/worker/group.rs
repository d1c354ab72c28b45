//! Which group protocol the worker speaks. Both protocols it uses are incremental — a member
//! joining or leaving moves only the partitions that change hands — but KIP-848's consumer
//! protocol also needs no group-wide barrier: the broker assigns, and each member reconciles on
//! its own heartbeat. So the worker speaks it whenever the broker offers it, and otherwise the
//! classic protocol with the `cooperative-sticky` assignor.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};

use crate::sink::kafka::KafkaContext;

/// How the members of the group share the partitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupProtocol {
    /// The consumer protocol if the broker offers it, else the classic one (decided at start).
    Auto,
    /// The classic group protocol with the `cooperative-sticky` assignor (any Kafka 2.4+).
    Classic,
    /// KIP-848's consumer protocol (`group.protocol=consumer`; Kafka 4.0+ brokers): the broker
    /// assigns, and rebalances need no group-wide barrier.
    Consumer,
}

impl GroupProtocol {
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "auto" => Some(GroupProtocol::Auto),
            "classic" => Some(GroupProtocol::Classic),
            "consumer" => Some(GroupProtocol::Consumer),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            GroupProtocol::Auto => "auto",
            GroupProtocol::Classic => "classic",
            GroupProtocol::Consumer => "consumer",
        }
    }
}

/// Consumer properties that only the classic protocol has: with the consumer protocol the broker
/// owns them (librdkafka refuses them), so asking for one is asking for the classic protocol.
pub const CLASSIC_ONLY_PROPERTIES: [&str; 4] =
    ["session.timeout.ms", "heartbeat.interval.ms", "partition.assignment.strategy", "group.protocol.type"];

/// The broker setting that lists the protocols its group coordinator accepts.
const OFFERED: &str = "group.coordinator.rebalance.protocols";
/// The broker's session timeout for consumer-protocol groups (a group may override it).
const CONSUMER_SESSION: &str = "group.consumer.session.timeout.ms";

/// The protocol a worker will speak, and why (logged at start).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Choice {
    pub protocol: GroupProtocol,
    pub why: String,
    /// With the consumer protocol: the broker's session timeout for the group, when known.
    pub session_timeout: Option<Duration>,
}

/// What the broker said about group protocols (or why it could not be asked).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    pub protocols: Vec<String>,
    pub consumer_session_timeout: Option<Duration>,
}

/// Decides the protocol. `classic_setting` is the first thing on the command line that only the
/// classic protocol honours (`--session-timeout-s`, a classic-only consumer property); `offer`
/// is asked for only when it can change the answer.
pub fn choose<E: std::fmt::Display>(
    requested: GroupProtocol,
    classic_setting: Option<&str>,
    offer: impl FnOnce() -> Result<Offer, E>,
) -> Choice {
    let choice = |protocol, why: String, session_timeout| Choice { protocol, why, session_timeout };
    match (requested, classic_setting) {
        (GroupProtocol::Classic, _) => choice(GroupProtocol::Classic, "--group-protocol classic".into(), None),
        (GroupProtocol::Consumer, _) => {
            let session = offer().ok().and_then(|o| o.consumer_session_timeout);
            choice(GroupProtocol::Consumer, "--group-protocol consumer".into(), session)
        }
        (GroupProtocol::Auto, Some(setting)) => {
            choice(GroupProtocol::Classic, format!("{setting} is a classic-protocol setting"), None)
        }
        (GroupProtocol::Auto, None) => match offer() {
            Ok(offer) if offer.protocols.iter().any(|p| p == "consumer") => choice(
                GroupProtocol::Consumer,
                format!("the broker offers it ({OFFERED}={})", offer.protocols.join(",")),
                offer.consumer_session_timeout,
            ),
            Ok(offer) => choice(
                GroupProtocol::Classic,
                format!("the broker offers only {OFFERED}={}", offer.protocols.join(",")),
                None,
            ),
            Err(why) => choice(
                GroupProtocol::Classic,
                format!("cannot ask the broker which protocols it offers ({why}); --group-protocol pins one"),
                None,
            ),
        },
    }
}

/// Asks a broker for its group protocols (DescribeConfigs on the broker: on Amazon MSK with IAM
/// that is `kafka-cluster:DescribeClusterDynamicConfiguration`). A broker older than KIP-848
/// does not know the setting: it offers only the classic protocol.
pub fn ask_broker(config: &ClientConfig, context: KafkaContext, timeout: Duration) -> Result<Offer, KafkaError> {
    let admin: AdminClient<KafkaContext> = config.create_with_context(context)?;
    let metadata = admin.inner().fetch_metadata(None, timeout)?;
    // Any broker answers for the cluster: the setting is the same on every one.
    let Some(broker) = metadata.brokers().first().map(|b| b.id()) else {
        return Err(KafkaError::MetadataFetch(RDKafkaErrorCode::BrokerNotAvailable));
    };
    let options = AdminOptions::new().request_timeout(Some(timeout));
    let described =
        futures::executor::block_on(admin.describe_configs(&[ResourceSpecifier::Broker(broker)], &options))?;
    let resource = match described.into_iter().next() {
        Some(Ok(resource)) => resource,
        Some(Err(code)) => return Err(KafkaError::AdminOp(code)),
        None => return Err(KafkaError::AdminOp(RDKafkaErrorCode::BrokerNotAvailable)),
    };
    let value = |name: &str| resource.get(name).and_then(|e| e.value.clone());
    let protocols = match value(OFFERED) {
        Some(list) => list.split(',').map(|p| p.trim().to_ascii_lowercase()).filter(|p| !p.is_empty()).collect(),
        None => vec!["classic".to_string()],
    };
    let consumer_session_timeout = value(CONSUMER_SESSION).and_then(|ms| ms.parse().ok()).map(Duration::from_millis);
    Ok(Offer { protocols, consumer_session_timeout })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(protocols: &[&str]) -> Result<Offer, KafkaError> {
        Ok(Offer {
            protocols: protocols.iter().map(|p| p.to_string()).collect(),
            consumer_session_timeout: Some(Duration::from_secs(45)),
        })
    }

    #[test]
    fn auto_speaks_the_consumer_protocol_only_when_the_broker_offers_it() {
        let c = choose(GroupProtocol::Auto, None, || offer(&["classic", "consumer"]));
        assert_eq!(c.protocol, GroupProtocol::Consumer);
        assert_eq!(c.session_timeout, Some(Duration::from_secs(45)));
        assert!(c.why.contains("classic,consumer"), "{}", c.why);
        let c = choose(GroupProtocol::Auto, None, || offer(&["classic"]));
        assert_eq!(c.protocol, GroupProtocol::Classic);
        assert!(c.why.contains("offers only"), "{}", c.why);
    }

    #[test]
    fn auto_falls_back_to_classic_and_says_why_when_the_broker_cannot_be_asked() {
        let c = choose(GroupProtocol::Auto, None, || Err::<Offer, _>("Broker: Cluster authorization failed"));
        assert_eq!(c.protocol, GroupProtocol::Classic);
        assert!(c.why.contains("Cluster authorization failed") && c.why.contains("--group-protocol"), "{}", c.why);
    }

    #[test]
    fn a_classic_only_setting_asks_for_the_classic_protocol_without_asking_the_broker() {
        let c = choose::<KafkaError>(GroupProtocol::Auto, Some("--session-timeout-s"), || {
            panic!("the broker is not asked")
        });
        assert_eq!(c.protocol, GroupProtocol::Classic);
        assert!(c.why.contains("--session-timeout-s"), "{}", c.why);
        let c = choose::<KafkaError>(GroupProtocol::Classic, None, || panic!("the broker is not asked"));
        assert_eq!(c.protocol, GroupProtocol::Classic);
    }

    #[test]
    fn every_name_reads_back() {
        for p in [GroupProtocol::Auto, GroupProtocol::Classic, GroupProtocol::Consumer] {
            assert_eq!(GroupProtocol::from_name(p.name()), Some(p));
        }
        assert_eq!(GroupProtocol::from_name("eager"), None);
    }
}
