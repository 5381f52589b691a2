"""A tiny HTTP/1.1 server on 127.0.0.1 (plain or TLS) that records what reaches it, and raw TCP
servers on 127.0.0.1 whose every connection a test's own function answers."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path

import anyio
import anyio.abc
import pytest
from anyio.streams.tls import TLSListener


@dataclass
class Seen:
    method: str
    target: str
    headers: dict[str, str]


@dataclass
class LoopbackServer:
    port: int
    requests: list[Seen] = field(default_factory=list)
    sni: list[str | None] = field(default_factory=list)


async def _answer(stream: anyio.abc.ByteStream, server: LoopbackServer) -> None:
    async with stream:
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                data += await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            return
        head = data.partition(b"\r\n\r\n")[0].decode("latin-1")
        request_line, *lines = head.split("\r\n")
        method, target, _ = request_line.split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, v in (x.split(":", 1) for x in lines)}
        server.requests.append(Seen(method, target, headers))
        if target == "/redirect":
            status, extra, body = "302 Found", "Location: /elsewhere\r\n", b""
        else:
            status, extra, body = "200 OK", "Content-Type: text/plain\r\n", b"served"
        response = (
            f"HTTP/1.1 {status}\r\n{extra}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        try:
            await stream.send(response.encode() + body)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            return


@contextlib.asynccontextmanager
async def _serve(ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[LoopbackServer]:
    listener: anyio.abc.Listener[anyio.abc.ByteStream]
    tcp = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    server = LoopbackServer(port=tcp.extra(anyio.abc.SocketAttribute.local_port))
    if ssl_context is not None:
        ssl_context.sni_callback = lambda _obj, name, _ctx: server.sni.append(name)
        listener = TLSListener(tcp, ssl_context, standard_compatible=False)
    else:
        listener = tcp

    async def handle(stream: anyio.abc.ByteStream) -> None:
        await _answer(stream, server)

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        yield server
        tg.cancel_scope.cancel()


@contextlib.asynccontextmanager
async def raw_server(
    handle: Callable[[anyio.abc.SocketStream], Awaitable[None]],
) -> AsyncIterator[int]:
    """Serve TCP on 127.0.0.1, each connection answered by `handle`; yields the port."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        yield port
        tg.cancel_scope.cancel()


async def read_request(stream: anyio.abc.SocketStream) -> tuple[bytes, bytes]:
    """One request's head and body (a Content-Length body, or a chunked one decoded)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += await stream.receive()
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = [line.lower() for line in head.split(b"\r\n")]
    if b"transfer-encoding: chunked" in lines:
        while not rest.endswith(b"0\r\n\r\n"):
            rest += await stream.receive()
        body = b""
        while True:
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line, 16)
            if size == 0:
                return head, body
            body, rest = body + rest[:size], rest[size + 2 :]
    length = next((int(x.split(b":")[1]) for x in lines if x.startswith(b"content-length:")), 0)
    while len(rest) < length:
        rest += await stream.receive()
    return head, rest


@pytest.fixture
async def server() -> AsyncIterator[LoopbackServer]:
    """A plain HTTP server listening on 127.0.0.1 only."""
    async with _serve() as s:
        yield s


@dataclass
class Certificates:
    ca_pem: bytes
    server_context: Callable[[str], ssl.SSLContext]

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cadata=self.ca_pem.decode())
        return context


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A throwaway CA, and server TLS contexts with certificates for a given host name."""
    pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wakecall test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    directory: Path = tmp_path_factory.mktemp("certs")

    def server_context(host: str) -> ssl.SSLContext:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
            .issuer_name(ca_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName(host), x509.IPAddress(IPv4Address("127.0.0.1"))]
                ),
                critical=False,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
                critical=False,
            )
            .sign(ca_key, hashes.SHA256())
        )
        cert_file = directory / f"{host}.pem"
        key_file = directory / f"{host}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_file, key_file)
        return context

    return Certificates(ca_pem=ca_pem, server_context=server_context)


@pytest.fixture
def tls_server(
    certificates: Certificates,
) -> Callable[[str], contextlib.AbstractAsyncContextManager[LoopbackServer]]:
    """Start a TLS server on 127.0.0.1 presenting a certificate for the given host name."""

    def start(host: str) -> contextlib.AbstractAsyncContextManager[LoopbackServer]:
        return _serve(certificates.server_context(host))

    return start
