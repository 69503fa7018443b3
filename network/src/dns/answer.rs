//! What the resolver answers itself, and what it forwards.
//!
//! The rules, for class IN (or ANY) questions:
//! - `NAME` or `NAME.dns.muelle`, any case, that the names file knows: the
//!   A records of every container with that name or alias (for A and ANY
//!   questions), nothing for other types (NOERROR, no records). The
//!   names scoped to the asker (the query's source address) count too,
//!   after the others.
//! - any other name under `dns.muelle`: NXDOMAIN, never forwarded;
//!   `dns.muelle` itself exists and holds no records.
//! - `D.C.B.A.in-addr.arpa` of a known address: a PTR to the first name
//!   the file gives that address (for PTR and ANY questions).
//!
//! Everything else is forwarded. The answers are authoritative, with a
//! TTL of 0 (a name may move as soon as a container goes), and built with
//! simple-dns, the record names compressed onto the question's (kept in
//! the case the client used).

use std::net::{IpAddr, Ipv4Addr};

use simple_dns::rdata::{A, PTR, RData};
use simple_dns::{
    CLASS, Label, Name, Packet, PacketFlag, QCLASS, QTYPE, Question, RCODE, ResourceRecord, TYPE,
};

use super::SEARCH_DOMAIN;
use super::names::Names;
use super::query::{Query, Rcode};

/// The TTL of every record the resolver gives.
const TTL: u32 = 0;

const CLASS_IN: u16 = 1;
const QCLASS_ANY: u16 = 255;
const TYPE_A: u16 = 1;
const TYPE_PTR: u16 = 12;
const QTYPE_ANY: u16 = 255;

/// The size of a compressed A record: a pointer to the question's name,
/// type, class, TTL, length and the address.
const A_RECORD_LEN: usize = 2 + 2 + 2 + 4 + 2 + 4;

#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    /// Send this answer.
    Answer(Vec<u8>),
    /// Not ours: relay the query upstream.
    Forward,
}

/// What the names file says of a question from `asker`. `msg` is the
/// query `query` was read from; answers longer than `max_len` are cut and flagged
/// truncated (512 for UDP: the resolver does not speak EDNS, a client
/// that needs more asks again over TCP).
pub fn decide(query: &Query, msg: &[u8], names: &Names, asker: IpAddr, max_len: usize) -> Decision {
    if query.qclass != CLASS_IN && query.qclass != QCLASS_ANY {
        return Decision::Forward;
    }
    let labels = query.labels();
    let zone_labels = SEARCH_DOMAIN.split('.').count();
    let in_zone = labels.len() >= zone_labels
        && labels[labels.len() - zone_labels..]
            .iter()
            .zip(SEARCH_DOMAIN.split('.'))
            .all(|(label, zone)| label.eq_ignore_ascii_case(zone.as_bytes()));
    let host = if in_zone {
        &labels[..labels.len() - zone_labels]
    } else {
        labels
    };

    let answer = |rcode, records| {
        Decision::Answer(
            build(query, rcode, records, max_len)
                .unwrap_or_else(|| query.error(msg, Rcode::ServFail)),
        )
    };
    if in_zone && host.is_empty() {
        return answer(RCODE::NoError, Records::None);
    }
    let addrs = dotted_lowercase(host).map_or_else(Vec::new, |key| names.addresses(&key, asker));
    if !addrs.is_empty() {
        return match query.qtype {
            TYPE_A | QTYPE_ANY => answer(RCODE::NoError, Records::A(&addrs)),
            _ => answer(RCODE::NoError, Records::None),
        };
    }
    if in_zone {
        return answer(RCODE::NameError, Records::None);
    }
    if let Some(name) = reverse_address(labels).and_then(|addr| names.name_of(addr, asker)) {
        return match query.qtype {
            TYPE_PTR | QTYPE_ANY => answer(RCODE::NoError, Records::Ptr(name)),
            _ => answer(RCODE::NoError, Records::None),
        };
    }
    Decision::Forward
}

/// The labels as a name in the names file's form; `None` when they cannot
/// be one (a label holding a dot, or bytes that are not UTF-8).
fn dotted_lowercase(labels: &[&[u8]]) -> Option<String> {
    let mut name = String::new();
    for label in labels {
        let label = std::str::from_utf8(label).ok()?;
        if label.contains('.') {
            return None;
        }
        if !name.is_empty() {
            name.push('.');
        }
        name.push_str(label);
    }
    name.make_ascii_lowercase();
    Some(name)
}

/// The address of a reverse name: `4.3.2.1.in-addr.arpa` is 1.2.3.4.
fn reverse_address(labels: &[&[u8]]) -> Option<Ipv4Addr> {
    let [d, c, b, a, in_addr, arpa] = labels else {
        return None;
    };
    if !in_addr.eq_ignore_ascii_case(b"in-addr") || !arpa.eq_ignore_ascii_case(b"arpa") {
        return None;
    }
    let octet = |label: &[u8]| -> Option<u8> {
        if label.is_empty() || label.len() > 3 || !label.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(label).ok()?.parse().ok()
    };
    Some(Ipv4Addr::new(octet(a)?, octet(b)?, octet(c)?, octet(d)?))
}

enum Records<'n> {
    None,
    A(&'n [Ipv4Addr]),
    Ptr(&'n str),
}

/// The answer packet; `None` if simple-dns cannot write it.
fn build(query: &Query, rcode: RCODE, records: Records, max_len: usize) -> Option<Vec<u8>> {
    let labels: Vec<Label> = query
        .labels()
        .iter()
        .map(|l| Label::new_unchecked(*l))
        .collect();
    let name = Name::new_with_labels(&labels);
    let mut packet = Packet::new_reply(query.id);
    packet.set_flags(PacketFlag::AUTHORITATIVE_ANSWER | PacketFlag::RECURSION_AVAILABLE);
    if query.recursion_desired() {
        packet.set_flags(PacketFlag::RECURSION_DESIRED);
    }
    *packet.rcode_mut() = rcode;
    let qclass = match query.qclass {
        QCLASS_ANY => QCLASS::ANY,
        _ => QCLASS::CLASS(CLASS::IN),
    };
    packet.questions.push(Question::new(
        name.clone(),
        qtype(query.qtype),
        qclass,
        false,
    ));
    match records {
        Records::None => {}
        Records::A(addrs) => packet.answers.extend(addrs.iter().map(|addr| {
            let rdata = RData::A(A {
                address: u32::from(*addr),
            });
            ResourceRecord::new(name.clone(), CLASS::IN, TTL, rdata)
        })),
        Records::Ptr(target) => {
            let rdata = RData::PTR(PTR(Name::new_unchecked(target)));
            packet
                .answers
                .push(ResourceRecord::new(name.clone(), CLASS::IN, TTL, rdata));
        }
    }
    let mut bytes = packet.build_bytes_vec_compressed().ok()?;
    while bytes.len() > max_len && !packet.answers.is_empty() {
        let excess = (bytes.len() - max_len).div_ceil(A_RECORD_LEN).max(1);
        let keep = packet.answers.len().saturating_sub(excess);
        packet.answers.truncate(keep);
        packet.set_flags(PacketFlag::TRUNCATION);
        bytes = packet.build_bytes_vec_compressed().ok()?;
    }
    Some(bytes)
}

/// The question's type as simple-dns writes it, known to it or not.
fn qtype(value: u16) -> QTYPE {
    match value {
        251 => QTYPE::IXFR,
        252 => QTYPE::AXFR,
        253 => QTYPE::MAILB,
        254 => QTYPE::MAILA,
        255 => QTYPE::ANY,
        other => QTYPE::TYPE(TYPE::from(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use simple_dns::PacketFlag as F;

    const NAMES: &str = "10.88.0.2 web www\n10.88.0.3 db\n10.88.0.4 api\n10.88.0.5 api\n\
                         @10.88.0.9 10.89.0.2 other\n@10.88.0.7 10.89.0.3 api\n";

    /// Who asks, in the tests: a container with names scoped to it.
    const ASKER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 88, 0, 7));

    fn query_bytes(name: &str, qtype: u16, qclass: u16) -> Vec<u8> {
        let mut packet = Packet::new_query(7);
        packet.set_flags(F::RECURSION_DESIRED);
        packet.questions.push(Question::new(
            Name::new_unchecked(name),
            super::qtype(qtype),
            QCLASS::CLASS(CLASS::IN),
            false,
        ));
        let mut msg = packet.build_bytes_vec().unwrap();
        let at = msg.len() - 2;
        msg[at..].copy_from_slice(&qclass.to_be_bytes());
        msg
    }

    fn ask_with(names: &Names, name: &str, qtype: u16, qclass: u16, max_len: usize) -> Decision {
        let msg = query_bytes(name, qtype, qclass);
        let query = Query::parse(&msg).unwrap();
        decide(&query, &msg, names, ASKER, max_len)
    }

    fn ask(name: &str, qtype: u16) -> Decision {
        ask_with(&Names::parse(NAMES), name, qtype, CLASS_IN, 512)
    }

    /// The answer's code, flags and records (A addresses or PTR targets).
    fn answered(decision: Decision) -> (RCODE, bool, Vec<String>) {
        let Decision::Answer(bytes) = decision else {
            panic!("forwarded");
        };
        let packet = Packet::parse(&bytes).unwrap();
        assert_eq!(packet.id(), 7);
        assert!(packet.has_flags(F::RESPONSE | F::RECURSION_DESIRED | F::RECURSION_AVAILABLE));
        assert_eq!(packet.questions.len(), 1);
        let records = packet
            .answers
            .iter()
            .map(|rr| {
                assert_eq!(rr.ttl, TTL);
                assert_eq!(rr.name, packet.questions[0].qname);
                match &rr.rdata {
                    RData::A(a) => Ipv4Addr::from(a.address).to_string(),
                    RData::PTR(ptr) => ptr.0.to_string(),
                    other => panic!("unexpected record {other:?}"),
                }
            })
            .collect();
        let authoritative = packet.has_flags(F::AUTHORITATIVE_ANSWER);
        (packet.rcode(), authoritative, records)
    }

    fn addresses(name: &str) -> Vec<String> {
        let (rcode, authoritative, records) = answered(ask(name, TYPE_A));
        assert_eq!(rcode, RCODE::NoError);
        assert!(authoritative);
        records
    }

    #[test]
    fn names_and_aliases_have_their_addresses() {
        assert_eq!(addresses("web"), ["10.88.0.2"]);
        assert_eq!(addresses("www"), ["10.88.0.2"]);
        assert_eq!(addresses("db"), ["10.88.0.3"]);
        assert_eq!(addresses("api"), ["10.88.0.4", "10.88.0.5", "10.89.0.3"]);
    }

    #[test]
    fn names_scoped_to_another_asker_are_not_answered() {
        assert_eq!(ask("other", TYPE_A), Decision::Forward);
        assert_eq!(
            answered(ask("other.dns.muelle", TYPE_A)),
            (RCODE::NameError, true, vec![])
        );
        assert_eq!(answered(ask("3.0.89.10.in-addr.arpa", TYPE_PTR)).2, ["api"]);
    }

    #[test]
    fn lookups_ignore_case_the_search_domain_and_a_trailing_dot() {
        assert_eq!(addresses("WeB"), ["10.88.0.2"]);
        assert_eq!(addresses("web.dns.muelle"), ["10.88.0.2"]);
        assert_eq!(addresses("WWW.Dns.Muelle."), ["10.88.0.2"]);
        assert_eq!(addresses("web."), ["10.88.0.2"]);
    }

    #[test]
    fn the_question_keeps_the_clients_case() {
        let Decision::Answer(bytes) = ask("WeB.DNS.muelle", TYPE_A) else {
            panic!("forwarded");
        };
        let packet = Packet::parse(&bytes).unwrap();
        assert_eq!(packet.questions[0].qname.to_string(), "WeB.DNS.muelle");
    }

    #[test]
    fn other_types_of_a_known_name_have_no_records() {
        for qtype in [28, 16, 15, 65] {
            assert_eq!(
                answered(ask("web", qtype)),
                (RCODE::NoError, true, vec![]),
                "{qtype}"
            );
        }
        assert_eq!(
            answered(ask("api", QTYPE_ANY)).2,
            ["10.88.0.4", "10.88.0.5", "10.89.0.3"]
        );
        // A type simple-dns does not know (it cannot read the answer back).
        let Decision::Answer(bytes) = ask("web", 65280) else {
            panic!("forwarded");
        };
        let msg = query_bytes("web", 65280, CLASS_IN);
        assert_eq!(bytes[2..4], [0x85, 0x80], "QR AA RD RA, NOERROR");
        assert_eq!(bytes[4..12], [0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(bytes[12..], msg[12..]);
    }

    #[test]
    fn unknown_names_in_the_zone_do_not_exist() {
        for (name, qtype) in [
            ("x.dns.muelle", TYPE_A),
            ("X.DNS.MUELLE.", 28),
            ("a.web.dns.muelle", TYPE_A),
        ] {
            assert_eq!(
                answered(ask(name, qtype)),
                (RCODE::NameError, true, vec![]),
                "{name}"
            );
        }
        assert_eq!(
            answered(ask("dns.muelle", TYPE_A)),
            (RCODE::NoError, true, vec![])
        );
    }

    #[test]
    fn everything_else_is_forwarded() {
        assert_eq!(ask("example.org", TYPE_A), Decision::Forward);
        assert_eq!(ask("x", TYPE_A), Decision::Forward);
        assert_eq!(ask("web.example.org", TYPE_A), Decision::Forward);
        assert_eq!(ask("9.0.88.10.in-addr.arpa", TYPE_PTR), Decision::Forward);
        let names = Names::parse(NAMES);
        assert_eq!(ask_with(&names, "web", TYPE_A, 3, 512), Decision::Forward); // CHAOS
    }

    #[test]
    fn known_addresses_have_their_first_name() {
        assert_eq!(
            answered(ask("2.0.88.10.in-addr.arpa", TYPE_PTR)),
            (RCODE::NoError, true, vec!["web".into()])
        );
        assert_eq!(
            answered(ask("5.0.88.10.IN-ADDR.ARPA.", TYPE_PTR)).2,
            ["api"]
        );
        assert_eq!(
            answered(ask("2.0.88.10.in-addr.arpa", TYPE_A)),
            (RCODE::NoError, true, vec![])
        );
    }

    #[test]
    fn reverse_names_are_read_strictly() {
        let name = |text: &str| {
            let labels: Vec<&[u8]> = text.split('.').map(str::as_bytes).collect();
            reverse_address(&labels)
        };
        assert_eq!(
            name("4.3.2.1.in-addr.arpa"),
            Some(Ipv4Addr::new(1, 2, 3, 4))
        );
        assert_eq!(name("256.3.2.1.in-addr.arpa"), None);
        assert_eq!(name("+4.3.2.1.in-addr.arpa"), None);
        assert_eq!(name("3.2.1.in-addr.arpa"), None);
        assert_eq!(name("4.3.2.1.ip6.arpa"), None);
    }

    #[test]
    fn long_answers_are_cut_and_flagged() {
        let text: String = (1..=100)
            .map(|i| format!("10.0.{}.{} many\n", i / 200, i % 200 + 1))
            .collect();
        let names = Names::parse(&text);
        let Decision::Answer(bytes) = ask_with(&names, "many", TYPE_A, CLASS_IN, 512) else {
            panic!("forwarded");
        };
        assert!(bytes.len() <= 512);
        let packet = Packet::parse(&bytes).unwrap();
        assert!(packet.has_flags(F::TRUNCATION));
        assert_eq!(packet.answers.len(), (512 - 12 - 10) / A_RECORD_LEN);

        let Decision::Answer(bytes) = ask_with(&names, "many", TYPE_A, CLASS_IN, 65535) else {
            panic!("forwarded");
        };
        let packet = Packet::parse(&bytes).unwrap();
        assert!(!packet.has_flags(F::TRUNCATION));
        assert_eq!(packet.answers.len(), 100);
    }
}
