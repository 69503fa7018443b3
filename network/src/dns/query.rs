//! Reading a query: its header and its one question, read by hand.
//!
//! Only what the resolver decides on is read, and nothing is allocated by
//! what the message claims: simple-dns' `Packet::parse` reserves room for
//! as many records as the header counts (a 12-byte message can claim 65535
//! of each) and refuses record types it does not know, which must still be
//! forwarded. The rest of the message (EDNS options and the like) is
//! relayed untouched to the upstream servers.
//!
//! Error answers (FORMERR, SERVFAIL, REFUSED, NOTIMP) are made from the
//! query's own bytes: its header with the flags changed and its question
//! echoed, whatever its type or class.

/// The length of a DNS header.
pub const HEADER_LEN: usize = 12;

const QR: u16 = 0x8000;
const OPCODE_MASK: u16 = 0x7800;
const RD: u16 = 0x0100;
const RA: u16 = 0x0080;
const RCODE_MASK: u16 = 0x000f;

/// The response codes the resolver sends from a query's own bytes
/// (NXDOMAIN comes with the answers built in `answer.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rcode {
    NoError = 0,
    FormErr = 1,
    ServFail = 2,
    NotImp = 4,
    Refused = 5,
}

/// The longest name on the wire, length octets and root included.
const MAX_WIRE_NAME: usize = 255;
const MAX_LABEL: usize = 63;

/// A query's header and its question, borrowed from the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query<'a> {
    pub id: u16,
    flags: u16,
    labels: Vec<&'a [u8]>,
    pub qtype: u16,
    pub qclass: u16,
    /// Where the question ends in the message.
    pub question_end: usize,
}

/// What to do with a message that is not a query we can read.
#[derive(Debug, PartialEq, Eq)]
pub enum Malformed {
    /// Say nothing: too short for a header, or itself an answer.
    Drop,
    /// Answer with this (FORMERR or NOTIMP, header only).
    Answer(Vec<u8>),
}

impl<'a> Query<'a> {
    /// Reads the header and the question of a standard query.
    pub fn parse(msg: &'a [u8]) -> Result<Query<'a>, Malformed> {
        if msg.len() < HEADER_LEN {
            return Err(Malformed::Drop);
        }
        let id = u16::from_be_bytes([msg[0], msg[1]]);
        let flags = u16::from_be_bytes([msg[2], msg[3]]);
        if flags & QR != 0 {
            return Err(Malformed::Drop);
        }
        let header_only = |rcode| Malformed::Answer(reply_header(id, flags, rcode, 0, 0));
        if flags & OPCODE_MASK != 0 {
            return Err(header_only(Rcode::NotImp));
        }
        let qdcount = u16::from_be_bytes([msg[4], msg[5]]);
        if qdcount != 1 {
            return Err(header_only(Rcode::FormErr));
        }
        let Some((labels, name_end)) = read_name(msg, HEADER_LEN) else {
            return Err(header_only(Rcode::FormErr));
        };
        let Some(fixed) = msg.get(name_end..name_end + 4) else {
            return Err(header_only(Rcode::FormErr));
        };
        Ok(Query {
            id,
            flags,
            labels,
            qtype: u16::from_be_bytes([fixed[0], fixed[1]]),
            qclass: u16::from_be_bytes([fixed[2], fixed[3]]),
            question_end: name_end + 4,
        })
    }

    /// The question name's labels, as sent (case kept).
    pub fn labels(&self) -> &[&'a [u8]] {
        &self.labels
    }

    /// Whether the client asked for recursion.
    pub fn recursion_desired(&self) -> bool {
        self.flags & RD != 0
    }

    /// An answer with no records: the query's header and question, with
    /// the response flags and this code.
    pub fn error(&self, msg: &[u8], rcode: Rcode) -> Vec<u8> {
        error_answer(msg, self.question_end, rcode)
    }
}

/// [`Query::error`] for a query read before: `question_end` is where its
/// question ended.
pub fn error_answer(msg: &[u8], question_end: usize, rcode: Rcode) -> Vec<u8> {
    let flags = u16::from_be_bytes([msg[2], msg[3]]);
    let mut out = reply_header(id_of(msg), flags, rcode, 1, 0);
    out.extend_from_slice(&msg[HEADER_LEN..question_end]);
    out
}

/// A name written without compression pointers (a question's name has
/// nothing before it to point to): its labels and where it ends.
fn read_name(msg: &[u8], mut at: usize) -> Option<(Vec<&[u8]>, usize)> {
    let start = at;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*msg.get(at)?);
        at += 1;
        if len == 0 {
            return Some((labels, at));
        }
        // With this label and the root's length octet still to come.
        if len > MAX_LABEL || at + len + 1 - start > MAX_WIRE_NAME {
            return None;
        }
        labels.push(msg.get(at..at + len)?);
        at += len;
    }
}

/// A response header: the query's id, opcode and RD flag, RA set (the
/// resolver forwards), the given code and counts; AA and TC are the
/// caller's to set.
fn reply_header(id: u16, query_flags: u16, rcode: Rcode, qdcount: u16, ancount: u16) -> Vec<u8> {
    let flags = QR | (query_flags & (OPCODE_MASK | RD)) | RA | (rcode as u16 & RCODE_MASK);
    let mut out = Vec::with_capacity(HEADER_LEN + 64);
    for word in [id, flags, qdcount, ancount, 0, 0] {
        out.extend_from_slice(&word.to_be_bytes());
    }
    out
}

/// The id of a message (callers checked it holds a header).
pub fn id_of(msg: &[u8]) -> u16 {
    u16::from_be_bytes([msg[0], msg[1]])
}

/// Sets the id of a message (callers checked it holds a header).
pub fn set_id(msg: &mut [u8], id: u16) {
    msg[..2].copy_from_slice(&id.to_be_bytes());
}

/// The response code of a message (callers checked it holds a header).
pub fn rcode_of(msg: &[u8]) -> u16 {
    u16::from_be_bytes([msg[2], msg[3]]) & RCODE_MASK
}

/// Whether a message is a response (callers checked it holds a header).
pub fn is_response(msg: &[u8]) -> bool {
    msg[2] & 0x80 != 0
}

/// How many questions a message holds (callers checked it holds a header).
pub fn qdcount_of(msg: &[u8]) -> u16 {
    u16::from_be_bytes([msg[4], msg[5]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use simple_dns::{Name, Packet, QCLASS, QTYPE, Question, TYPE};

    fn query(name: &str, qtype: QTYPE) -> Vec<u8> {
        let mut packet = Packet::new_query(0x1234);
        packet.set_flags(simple_dns::PacketFlag::RECURSION_DESIRED);
        packet.questions.push(Question::new(
            Name::new_unchecked(name),
            qtype,
            QCLASS::CLASS(simple_dns::CLASS::IN),
            false,
        ));
        packet.build_bytes_vec().unwrap()
    }

    #[test]
    fn reads_the_question() {
        let msg = query("Web.dns.muelle", TYPE::A.into());
        let q = Query::parse(&msg).unwrap();
        assert_eq!(q.id, 0x1234);
        assert!(q.recursion_desired());
        assert_eq!(q.labels(), [&b"Web"[..], b"dns", b"muelle"]);
        assert_eq!((q.qtype, q.qclass), (1, 1));
        assert_eq!(q.question_end, msg.len());
    }

    #[test]
    fn unknown_types_are_read() {
        let mut msg = query("example.org", TYPE::A.into());
        let at = msg.len() - 4;
        msg[at..at + 2].copy_from_slice(&65280u16.to_be_bytes());
        assert_eq!(Query::parse(&msg).unwrap().qtype, 65280);
    }

    #[test]
    fn errors_echo_the_question() {
        let msg = query("example.org", TYPE::AAAA.into());
        let q = Query::parse(&msg).unwrap();
        let answer = q.error(&msg, Rcode::ServFail);
        let packet = Packet::parse(&answer).unwrap();
        assert_eq!(packet.id(), 0x1234);
        assert!(packet.has_flags(simple_dns::PacketFlag::RESPONSE));
        assert!(packet.has_flags(simple_dns::PacketFlag::RECURSION_DESIRED));
        assert_eq!(packet.rcode(), simple_dns::RCODE::ServerFailure);
        assert_eq!(packet.questions.len(), 1);
        assert_eq!(packet.questions[0].qname.to_string(), "example.org");
    }

    #[test]
    fn short_messages_and_answers_are_dropped() {
        assert_eq!(Query::parse(&[]), Err(Malformed::Drop));
        assert_eq!(Query::parse(&[0; 11]), Err(Malformed::Drop));
        let mut msg = query("web", TYPE::A.into());
        msg[2] |= 0x80;
        assert_eq!(Query::parse(&msg), Err(Malformed::Drop));
    }

    fn rcode(result: Result<Query, Malformed>) -> u16 {
        match result {
            Err(Malformed::Answer(answer)) => {
                assert_eq!(answer.len(), HEADER_LEN);
                assert!(is_response(&answer));
                rcode_of(&answer)
            }
            other => panic!("expected an error answer, got {other:?}"),
        }
    }

    #[test]
    fn malformed_queries_get_formerr() {
        let msg = query("web", TYPE::A.into());
        // Two questions claimed, one present.
        let mut two = msg.clone();
        two[5] = 2;
        assert_eq!(rcode(Query::parse(&two)), Rcode::FormErr as u16);
        // No question.
        let mut none = msg.clone();
        none[5] = 0;
        assert_eq!(rcode(Query::parse(&none)), Rcode::FormErr as u16);
        // Cut in the name, in the type.
        assert_eq!(rcode(Query::parse(&msg[..14])), Rcode::FormErr as u16);
        assert_eq!(
            rcode(Query::parse(&msg[..msg.len() - 1])),
            Rcode::FormErr as u16
        );
        // A compression pointer, a label too long.
        let mut pointer = msg[..HEADER_LEN].to_vec();
        pointer.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1]);
        assert_eq!(rcode(Query::parse(&pointer)), Rcode::FormErr as u16);
        let mut long = msg[..HEADER_LEN].to_vec();
        long.push(64);
        long.extend_from_slice(&[b'a'; 64]);
        long.extend_from_slice(&[0, 0, 1, 0, 1]);
        assert_eq!(rcode(Query::parse(&long)), Rcode::FormErr as u16);
    }

    #[test]
    fn names_longer_than_255_octets_are_refused() {
        let mut msg = query("web", TYPE::A.into())[..HEADER_LEN].to_vec();
        for _ in 0..5 {
            msg.push(63);
            msg.extend_from_slice(&[b'a'; 63]);
        }
        msg.extend_from_slice(&[0, 0, 1, 0, 1]);
        assert_eq!(rcode(Query::parse(&msg)), Rcode::FormErr as u16);
    }

    #[test]
    fn other_opcodes_are_not_implemented() {
        let mut msg = query("web", TYPE::A.into());
        msg[2] |= 0x28; // opcode 5, UPDATE
        assert_eq!(rcode(Query::parse(&msg)), Rcode::NotImp as u16);
    }
}
