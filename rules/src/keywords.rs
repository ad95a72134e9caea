//! What Suricata 7 calls each keyword: sticky buffers, legacy content modifiers, transforms,
//! and the other keywords it knows. The names are Suricata's (`suricata --list-keywords`).

/// A sticky buffer: canonical name, the aliases that select it, and the application protocol
/// it belongs to (`None`: any protocol, e.g. `file.data` or `pkt_data`).
pub struct Sticky {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub proto: Option<&'static str>,
}

const fn s(
    name: &'static str,
    aliases: &'static [&'static str],
    proto: Option<&'static str>,
) -> Sticky {
    Sticky {
        name,
        aliases,
        proto,
    }
}

const HTTP: Option<&str> = Some("http");
const TLS: Option<&str> = Some("tls");
const SSH: Option<&str> = Some("ssh");
const ANY: Option<&str> = None;

/// Every sticky buffer of Suricata 7.0.
pub static STICKY: &[Sticky] = &[
    s("pkt_data", &[], ANY),
    // Suricata 7 inspects HTTP response bodies through the file_data list: the names are one buffer.
    s("file.data", &["file_data", "http.response_body"], ANY),
    s("base64_data", &[], ANY),
    s("http.uri", &[], HTTP),
    s("http.uri.raw", &[], HTTP),
    s("http.method", &[], HTTP),
    s("http.protocol", &["http_protocol"], HTTP),
    s("http.start", &["http_start"], HTTP),
    s("http.request_line", &["http_request_line"], HTTP),
    s("http.response_line", &["http_response_line"], HTTP),
    s("http.request_body", &[], HTTP),
    s("http.header", &[], HTTP),
    s("http.header.raw", &[], HTTP),
    s("http.header_names", &["http_header_names"], HTTP),
    s("http.cookie", &[], HTTP),
    s("http.user_agent", &[], HTTP),
    s("http.host", &[], HTTP),
    s("http.host.raw", &[], HTTP),
    s("http.accept", &["http_accept"], HTTP),
    s("http.accept_lang", &["http_accept_lang"], HTTP),
    s("http.accept_enc", &["http_accept_enc"], HTTP),
    s("http.connection", &["http_connection"], HTTP),
    s("http.content_len", &["http_content_len"], HTTP),
    s("http.content_type", &["http_content_type"], HTTP),
    s("http.location", &[], HTTP),
    s("http.server", &[], HTTP),
    s("http.referer", &["http_referer"], HTTP),
    s("http.stat_msg", &[], HTTP),
    s("http.stat_code", &[], HTTP),
    s("http.request_header", &[], HTTP),
    s("http.response_header", &[], HTTP),
    s("http2.header_name", &[], Some("http2")),
    s("dns.query", &["dns_query"], Some("dns")),
    s("tls.sni", &["tls_sni"], TLS),
    s("tls.certs", &[], TLS),
    s("tls.cert_issuer", &["tls_cert_issuer"], TLS),
    s("tls.cert_subject", &["tls_cert_subject"], TLS),
    s("tls.cert_serial", &["tls_cert_serial"], TLS),
    s("tls.cert_fingerprint", &["tls_cert_fingerprint"], TLS),
    s("tls.random", &[], TLS),
    s("tls.random_time", &[], TLS),
    s("tls.random_bytes", &[], TLS),
    s("ja3.hash", &["ja3_hash"], TLS),
    s("ja3.string", &["ja3_string"], TLS),
    s("ja3s.hash", &["ja3s_hash"], TLS),
    s("ja3s.string", &["ja3s_string"], TLS),
    s("ja4.hash", &[], ANY),
    s("ssh.proto", &["ssh_proto"], SSH),
    s("ssh.software", &["ssh_software"], SSH),
    s("ssh.hassh", &["ssh-hassh"], SSH),
    s("ssh.hassh.server", &["ssh-hassh-server"], SSH),
    s("ssh.hassh.string", &["ssh-hassh-string"], SSH),
    s("ssh.hassh.server.string", &["ssh-hassh-server-string"], SSH),
    s("dcerpc.stub_data", &["dce_stub_data"], ANY),
    s("smb.named_pipe", &[], Some("smb")),
    s("smb.share", &[], Some("smb")),
    s("smb.ntlmssp_user", &[], Some("smb")),
    s("smb.ntlmssp_domain", &[], Some("smb")),
    s("file.name", &[], ANY),
    s("file.magic", &[], ANY),
    s("dnp3.data", &["dnp3_data"], Some("dnp3")),
    s("krb5.cname", &["krb5_cname"], Some("krb5")),
    s("krb5.sname", &["krb5_sname"], Some("krb5")),
    s("rfb.name", &[], Some("rfb")),
    s("snmp.usm", &[], Some("snmp")),
    s("snmp.community", &[], Some("snmp")),
    s("sip.method", &[], Some("sip")),
    s("sip.uri", &[], Some("sip")),
    s("sip.protocol", &[], Some("sip")),
    s("sip.stat_code", &[], Some("sip")),
    s("sip.stat_msg", &[], Some("sip")),
    s("sip.request_line", &[], Some("sip")),
    s("sip.response_line", &[], Some("sip")),
    s("mqtt.connect.clientid", &[], Some("mqtt")),
    s("mqtt.connect.username", &[], Some("mqtt")),
    s("mqtt.connect.password", &[], Some("mqtt")),
    s("mqtt.connect.willtopic", &[], Some("mqtt")),
    s("mqtt.connect.willmessage", &[], Some("mqtt")),
    s("mqtt.publish.topic", &[], Some("mqtt")),
    s("mqtt.publish.message", &[], Some("mqtt")),
    s("mqtt.subscribe.topic", &[], Some("mqtt")),
    s("mqtt.unsubscribe.topic", &[], Some("mqtt")),
    s("quic.version", &[], Some("quic")),
    s("quic.sni", &[], Some("quic")),
    s("quic.ua", &[], Some("quic")),
    s("quic.cyu.hash", &[], Some("quic")),
    s("quic.cyu.string", &[], Some("quic")),
    s("ike.init_spi", &[], Some("ike")),
    s("ike.resp_spi", &[], Some("ike")),
    s("ike.vendor", &[], Some("ike")),
    s("ike.nonce_payload", &[], Some("ike")),
    s("ike.key_exchange_payload", &[], Some("ike")),
    s("ip.src", &[], ANY),
    s("ip.dst", &[], ANY),
    s("ipv4.hdr", &[], ANY),
    s("ipv6.hdr", &[], ANY),
    s("icmpv4.hdr", &[], ANY),
    s("icmpv6.hdr", &[], ANY),
    s("tcp.hdr", &[], ANY),
    s("udp.hdr", &[], ANY),
    s("frame", &[], ANY),
];

/// Finds a sticky buffer by canonical name or alias.
pub fn sticky(name: &str) -> Option<&'static Sticky> {
    static INDEX: std::sync::OnceLock<std::collections::HashMap<&'static str, &'static Sticky>> =
        std::sync::OnceLock::new();
    INDEX
        .get_or_init(|| {
            STICKY
                .iter()
                .flat_map(|s| {
                    std::iter::once(s.name)
                        .chain(s.aliases.iter().copied())
                        .map(move |n| (n, s))
                })
                .collect()
        })
        .get(name)
        .copied()
}

/// The sticky buffer with canonical name `name` (which must exist).
pub fn sticky_by_name(name: &str) -> Option<&'static Sticky> {
    STICKY.iter().find(|s| s.name == name)
}

/// Legacy content modifiers (`content:"x"; http_uri;`) and the buffer each selects.
pub static LEGACY_MODIFIERS: &[(&str, &str)] = &[
    ("http_uri", "http.uri"),
    ("http_raw_uri", "http.uri.raw"),
    ("http_method", "http.method"),
    ("http_header", "http.header"),
    ("http_raw_header", "http.header.raw"),
    ("http_cookie", "http.cookie"),
    ("http_client_body", "http.request_body"),
    ("http_server_body", "file.data"),
    ("http_stat_code", "http.stat_code"),
    ("http_stat_msg", "http.stat_msg"),
    ("http_user_agent", "http.user_agent"),
    ("http_host", "http.host"),
    ("http_raw_host", "http.host.raw"),
];

/// pcre's legacy buffer flags and the buffer each selects.
pub static PCRE_BUFFER_FLAGS: &[(char, &str)] = &[
    ('U', "http.uri"),
    ('I', "http.uri.raw"),
    ('P', "http.request_body"),
    ('Q', "file.data"),
    ('H', "http.header"),
    ('D', "http.header.raw"),
    ('M', "http.method"),
    ('C', "http.cookie"),
    ('S', "http.stat_code"),
    ('Y', "http.stat_msg"),
    ('V', "http.user_agent"),
    ('W', "http.host"),
    ('Z', "http.host.raw"),
];

/// pcre's matching flags, in the canonical order the printer uses (`R` is kept apart).
pub const PCRE_FLAGS: &str = "ismxAEGOB";

/// Transforms that take no argument.
pub static TRANSFORMS: &[&str] = &[
    "compress_whitespace",
    "strip_whitespace",
    "strip_pseudo_headers",
    "to_md5",
    "to_sha1",
    "to_sha256",
    "dotprefix",
    "url_decode",
    "header_lowercase",
    "to_lowercase",
    "to_uppercase",
];

/// Keywords that take no value.
pub static FLAGS: &[&str] = &[
    "sameip",
    "ftpbounce",
    "noalert",
    "tls_cert_expired",
    "tls_cert_valid",
    "tls_store",
    "bypass",
    "prefilter",
];

/// Other keywords Suricata 7 knows, kept with their raw value (packet/flow/app-layer level).
pub static GENERIC: &[&str] = &[
    "alert",
    "geoip",
    "rpc",
    "flowvar",
    "pktvar",
    "hostbits",
    "ipv4-csum",
    "tcpv4-csum",
    "tcpv6-csum",
    "udpv4-csum",
    "udpv6-csum",
    "icmpv4-csum",
    "icmpv6-csum",
    "igmp-csum",
    "nfq_set_mark",
    "flow.age",
    "requires",
    "tls.version",
    "tls.subject",
    "tls.issuerdn",
    "tls_cert_notbefore",
    "tls_cert_notafter",
    "tls.fingerprint",
    "tls.cert_chain_len",
    "nfs_procedure",
    "nfs.version",
    "ssh.protoversion",
    "ssh.softwareversion",
    "ssl_version",
    "ssl_state",
    "http2.frametype",
    "http2.errorcode",
    "http2.priority",
    "http2.window",
    "http2.size_update",
    "http2.settings",
    "dcerpc.iface",
    "dcerpc.opnum",
    "asn1",
    "config",
    "filename",
    "fileext",
    "filestore",
    "filemagic",
    "filemd5",
    "filesha1",
    "filesha256",
    "filesize",
    "l3_proto",
    "iprep",
    "dns.opcode",
    "modbus",
    "cip_service",
    "enip_command",
    "dnp3_func",
    "dnp3_ind",
    "dnp3_obj",
    "krb5_err_code",
    "krb5_msg_type",
    "krb5.ticket_encryption",
    "rfb.secresult",
    "rfb.sectype",
    "template2",
    "ftpdata_command",
    "dhcp.leasetime",
    "dhcp.rebinding_time",
    "dhcp.renewal_time",
    "snmp.version",
    "snmp.pdu_type",
    "mqtt.type",
    "mqtt.flags",
    "mqtt.qos",
    "mqtt.protocol_version",
    "mqtt.reason_code",
    "mqtt.connect.flags",
    "mqtt.connack.session_present",
    "ike.exchtype",
    "ike.chosen_sa_attribute",
    "ike.key_exchange_payload_length",
    "ike.nonce_payload_length",
    "stream_size",
    "fragbits",
    "ipopts",
];

/// Aliases of generic keywords.
pub static GENERIC_ALIASES: &[(&str, &str)] = &[
    ("dce_iface", "dcerpc.iface"),
    ("dce_opnum", "dcerpc.opnum"),
    ("ssh_protoversion", "ssh.protoversion"),
    ("ssh_softwareversion", "ssh.softwareversion"),
];

/// Buffer-bound keywords Suricata 7 knows, kept with their raw value.
pub static PAYLOAD_GENERIC: &[&str] = &["dataset", "datarep", "lua", "luajit"];

/// Integer-comparison keywords on header fields, by canonical name, with their aliases.
pub static INT_KEYWORDS: &[(&str, &[&str])] = &[
    ("ttl", &[]),
    ("tos", &[]),
    ("id", &[]),
    ("itype", &[]),
    ("icode", &[]),
    ("icmp_id", &[]),
    ("icmp_seq", &[]),
    ("tcp.ack", &["ack"]),
    ("tcp.seq", &["seq"]),
    ("tcp.window", &["window"]),
    ("tcp.mss", &[]),
    ("icmpv6.mtu", &[]),
    ("fragoffset", &[]),
];

/// Finds a static canonical name in `list`.
pub fn find(list: &'static [&'static str], name: &str) -> Option<&'static str> {
    list.iter().copied().find(|k| *k == name)
}
