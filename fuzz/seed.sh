#!/usr/bin/env bash
# Builds the fuzz targets' seed corpora at run time, into fuzz/corpus/<target>/ (git
# ignored; cargo fuzz's default corpus folder, which it then grows):
#   - the SIP messages of fixtures/sipp/*.xml, their sipp keywords filled in;
#   - the RFC 4475 torture messages from $SIPREG_RFC4475_DIR, read there, never copied
#     into the repository (unset: fixtures only);
#   - a few hand-made PIDF documents, Authorization values and JWTs.
# Usage: bash fuzz/seed.sh            (from anywhere; existing corpus files are kept)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
out="$here/corpus"
for t in sip_message tcp_framer pidf authorization jwt; do mkdir -p "$out/$t"; done
rfc="${SIPREG_RFC4475_DIR:-}"
if [ -n "$rfc" ] && [ ! -f "$rfc/wsinv.dat" ]; then
  echo "seed.sh: SIPREG_RFC4475_DIR=$rfc does not hold the RFC 4475 messages" >&2
  exit 1
fi
[ -n "$rfc" ] || echo "seed.sh: SIPREG_RFC4475_DIR unset: fixtures and hand seeds only" >&2

perl - "$root" "$out" "$rfc" <<'PERL'
use strict;
use warnings;
use MIME::Base64 qw(encode_base64url);

my ($root, $out, $rfc) = @ARGV;
my %count;

sub put {
    my ($target, $name, $bytes) = @_;
    $name =~ s/[^A-Za-z0-9_.-]/_/g;
    open(my $f, '>:raw', "$out/$target/$name") or die "$out/$target/$name: $!";
    print $f $bytes;
    close $f;
    $count{$target}++;
}

sub jwt {
    my ($header, $claims, $sig) = @_;
    return encode_base64url($header) . '.' . encode_base64url($claims) . '.' . $sig;
}

my $claims = '{"iss":"https://sipreg.local","sub":"0b6f1c1e-7d3a-4c55-9a51-1f2e3d4c5b6a",'
  . '"aud":"sipreg","exp":4102444800,"iat":1764547200,"nbf":1764547200,"jti":"j1",'
  . '"username":"alice","roles":["user"],"scope":"sip:register sip:presence"}';
my $sig = 'c2lnbmF0dXJlLW5vdC1jaGVja2VkLWhlcmU';
my $token = jwt('{"alg":"RS256","typ":"JWT","kid":"k1"}', $claims, $sig);
my $digest = 'Authorization: Digest username="alice", realm="sipreg.local", '
  . 'nonce="MTc2NDU0NzIwMC5hYmNkZWY", uri="sip:192.0.2.10", '
  . 'response="6629fae49393a05397450978507c4ef1", algorithm=MD5, qop=auth, '
  . 'nc=00000001, cnonce="0a4f113b"';

# sipp keywords -> plausible values ([branch], [call_id] and [len] per message).
my %fill = (
    remote_ip => '192.0.2.10', remote_port => '5060', local_ip => '192.0.2.20',
    local_port => '5070', transport => 'UDP', call_number => '1', field0 => 'alice',
    field2 => $token, field3 => $digest, authentication => $digest,
);

my @messages;
for my $xml (sort glob("$root/fixtures/sipp/*.xml")) {
    my ($base) = $xml =~ m{([^/]+)\.xml$};
    open(my $f, '<', $xml) or die "$xml: $!";
    my $text = do { local $/; <$f> };
    my $n = 0;
    while ($text =~ /<!\[CDATA\[(.*?)\]\]>/sg) {
        my @lines = split /\n/, $1;
        shift @lines while @lines && $lines[0] =~ /^\s*$/;
        pop @lines while @lines && $lines[-1] =~ /^\s*$/;
        next unless @lines;
        my ($indent) = sort { $a <=> $b } map { /^( *)/; length $1 } grep { /\S/ } @lines;
        s/^ {0,$indent}// for @lines;
        $n++;
        my ($head, $body) = (join("\r\n", @lines), '');
        if ($head =~ /^(.*?)\r\n\s*\r\n(.*)$/s) {
            ($head, $body) = ($1, "$2\r\n");
        }
        for ($head, $body) {
            s/\[branch\]/z9hG4bK-seed-$base-$n/g;
            s/\[call_id\]/seed-$base-$n\@192.0.2.20/g;
            s/\[(\w+)\]/exists $fill{$1} ? $fill{$1} : "[$1]"/ge;
        }
        my $len = length $body;
        $head =~ s/\[len\]/$len/g;
        my $msg = "$head\r\n\r\n$body";
        push @messages, $msg;
        put('sip_message', "fixture-$base-$n", $msg);
        put('tcp_framer', "fixture-$base-$n", "\0$msg");
        put('pidf', "fixture-$base-$n", $body) if $body =~ /^<\?xml/;
    }
}

my @auth;
if ($rfc ne '') {
    for my $dat (sort glob("$rfc/*.dat")) {
        my ($base) = $dat =~ m{([^/]+)\.dat$};
        open(my $f, '<:raw', $dat) or die "$dat: $!";
        my $msg = do { local $/; <$f> };
        push @messages, $msg;
        put('sip_message', "rfc4475-$base", $msg);
        # Streams in two ways: at once, and in reads of 1, 7, 64 and 256 octets.
        put('tcp_framer', "rfc4475-$base", "\0$msg");
        put('tcp_framer', "rfc4475-$base-chunked", "\x04\x00\x06\x3f\xff$msg");
    }
}
for my $msg (@messages) {
    push @auth, $1 while $msg =~ /^(?:Authorization|Proxy-Authorization)[ \t]*:[ \t]*([^\r\n]*)/mgi;
}

# One stream of every message with keep-alives (RFC 5626 §4.4.1) and CRLFs between.
my @fixture_msgs = grep { /Content-Length/i } @messages;
put('tcp_framer', 'stream-all', "\x03\x00\x10\x80" . join("\r\n\r\n\r\n", @fixture_msgs[0 .. ($#fixture_msgs < 7 ? $#fixture_msgs : 7)]));

my %seen;
my $i = 0;
for my $a (grep { !$seen{$_}++ } @auth,
    'Bearer ' . $token,
    substr($digest, length 'Authorization: '),
    'Digest username="a\"b", realm="r", nonce="n", uri="sip:x", response="00", algorithm=SHA-256',
    'Digest username="bob",realm="r" , nonce=n1,uri="sip:a.com;transport=tcp",response=abc,algorithm=SHA-512-256,opaque=""',
    'Bearer abc+/def~ghi_jkl-mno.pqr==',
    'NewScheme param=value, other="quoted, with comma"') {
    put('authorization', 'auth-' . $i++, $a);
}

my @jwts = (
    $token,
    jwt('{"alg":"ES256","typ":"JWT","kid":"e1"}', $claims, $sig),
    jwt('{"alg":"EdDSA","kid":"d1"}', '{"iss":"https://idp.example","sub":"x","aud":["a","b"],"exp":1,"client_id":"x"}', ''),
    jwt('{"alg":"none"}', $claims, ''),
    jwt('{"alg":"HS256","typ":"JWT"}', $claims, $sig),
    jwt('{"alg":"RS256","kid":null}', '{"iss":"x","aud":[],"sub":"","exp":-1,"roles":[]}', $sig),
    jwt('{"alg":"RS256"}', '{"sub":"no iss"}', $sig),
);
$i = 0;
put('jwt', 'jwt-' . $i++, $_) for @jwts;

put('pidf', 'hand-full', <<'XML');
<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" xmlns:dm="urn:ietf:params:xml:ns:pidf:data-model"
    xmlns:rpid="urn:ietf:params:xml:ns:pidf:rpid" xmlns:x="urn:example:x" entity="sip:alice@example.com">
  <tuple id="t1"><status><basic>closed</basic><x:ext a="1">v</x:ext></status>
    <dm:deviceID>urn:uuid:00000000-0000-0000-0000-000000000001</dm:deviceID>
    <contact priority="0.8">sip:alice@192.0.2.20:5070</contact>
    <note xml:lang="en">at &lt;lunch&gt; &amp; back&#x20;soon</note>
    <timestamp>2026-12-07T12:00:00Z</timestamp></tuple>
  <note>top-level note</note>
  <dm:person id="p1"><rpid:activities><rpid:meeting/><rpid:other>x</rpid:other></rpid:activities>
    <rpid:mood><rpid:happy/></rpid:mood><rpid:user-input idle-threshold="600">idle</rpid:user-input>
    <dm:note>person</dm:note><dm:timestamp>2026-12-07T12:00:00Z</dm:timestamp></dm:person>
  <dm:device id="d1"><dm:deviceID>urn:uuid:00000000-0000-0000-0000-000000000001</dm:deviceID>
    <dm:note>phone</dm:note></dm:device>
  <x:unknown><x:deep><x:deeper>text<![CDATA[<raw>]]></x:deeper></x:deep></x:unknown>
</presence>
XML
put('pidf', 'hand-minimal', '<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="pres:a@b"/>');
put('pidf', 'hand-doctype', '<?xml version="1.0"?><!DOCTYPE p [<!ENTITY e "x">]><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="&e;"/>');

print join(', ', map { "$_: $count{$_}" } sort keys %count), " seed files\n";
PERL
