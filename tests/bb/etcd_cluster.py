"""A real etcd cluster for the tests of etcd:// locks.

Cluster(n) starts n members of Debian's etcd-server on 127.0.0.1, each on
two free ports (client and peer), in a temporary directory, and waits (with
a bound) until every member says it is healthy.  Use it as a context
manager: the members are killed and their directory removed however the
test ends.  Members can be stopped, killed and started again, and the
leader found, for failure tests.

When etcd is not installed, require() raises bb.Skip with the reason.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import bb

ETCD = shutil.which("etcd") or "/usr/bin/etcd"


def require():
    """Skips the calling test when etcd cannot be run here."""
    if not os.access(ETCD, os.X_OK):
        raise bb.Skip("etcd is not installed (Debian: apt-get install "
                      "etcd-server; make deps installs it)")
    out = subprocess.run([bb.SUPERVISE, "-l", "etcd://127.0.0.1:1/x",
                          "true"], capture_output=True, text=True)
    if "not available in this build" in out.stderr:
        raise bb.Skip("this build has no remote locks (libcurl4-openssl-dev"
                      " and libjson-c-dev were missing at build time)")


def free_ports(n):
    """n distinct ports that were free a moment ago."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def closed_port():
    """A port on 127.0.0.1 where nothing listens (a moment ago)."""
    return free_ports(1)[0]


def http_json(url, body=None, timeout=2.0):
    """POSTs body (or GETs) and returns the decoded JSON answer."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data)
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read().decode())


def make_certs(d):
    """A CA, a server certificate for 127.0.0.1 and a client certificate
    in d (openssl); returns {"ca", "server", "server_key", "client",
    "client_key", "other_ca"} (paths).  other_ca signed nothing here."""
    def ossl(*args):
        subprocess.run(["openssl"] + list(args), cwd=d, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(os.path.join(d, "san.cnf"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n"
                "extendedKeyUsage=serverAuth,clientAuth\n")
    for ca in ("ca", "other_ca"):
        ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", "/CN=test %s" % ca, "-keyout", ca + "-key.pem",
             "-out", ca + ".pem")
    for name in ("server", "client"):
        ossl("req", "-newkey", "rsa:2048", "-nodes", "-subj",
             "/CN=%s" % name, "-keyout", name + "-key.pem", "-out",
             name + ".csr")
        ossl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem",
             "-CAkey", "ca-key.pem", "-CAcreateserial", "-days", "2",
             "-extfile", "san.cnf", "-out", name + ".pem")
    return {k: os.path.join(d, v) for k, v in [
        ("ca", "ca.pem"), ("other_ca", "other_ca.pem"),
        ("server", "server.pem"), ("server_key", "server-key.pem"),
        ("client", "client.pem"), ("client_key", "client-key.pem")]}


class Member:
    def __init__(self, cluster, i, client, peer):
        self.cluster, self.i = cluster, i
        self.name = "m%d" % i
        self.client, self.peer = client, peer
        self.proc = None

    @property
    def endpoint(self):
        return "127.0.0.1:%d" % self.client

    def start(self, state="new"):
        c = self.cluster
        scheme = "https://" if c.tls else "http://"
        args = [ETCD, "--name", self.name,
                "--data-dir", os.path.join(c.dir, self.name),
                "--listen-client-urls", scheme + self.endpoint,
                "--advertise-client-urls", scheme + self.endpoint,
                "--listen-peer-urls", "http://127.0.0.1:%d" % self.peer,
                "--initial-advertise-peer-urls",
                "http://127.0.0.1:%d" % self.peer,
                "--initial-cluster", c.initial_cluster,
                "--initial-cluster-state", state,
                "--initial-cluster-token", c.token,
                "--heartbeat-interval", "50", "--election-timeout", "500",
                "--logger", "zap", "--log-level", "error"] + c.extra
        if c.tls:
            args += ["--cert-file", c.tls["server"],
                     "--key-file", c.tls["server_key"],
                     "--trusted-ca-file", c.tls["ca"], "--client-cert-auth"]
        log = open(os.path.join(c.dir, self.name + ".log"), "ab")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=log)
        log.close()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGKILL):
        if self.alive():
            self.proc.send_signal(sig)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def status(self):
        """This member's /v3/maintenance/status answer (or None)."""
        try:
            return http_json("http://%s/v3/maintenance/status" %
                             self.endpoint, {})
        except (OSError, ValueError):
            return None

    def healthy(self):
        tls = self.cluster.tls
        if tls:
            # A TLS port that accepts connections is enough here.
            try:
                socket.create_connection(("127.0.0.1", self.client),
                                         timeout=1).close()
                return True
            except OSError:
                return False
        try:
            return http_json("http://%s/health" % self.endpoint).get(
                "health") == "true"
        except (OSError, ValueError):
            return False


class Cluster:
    """n etcd members on 127.0.0.1 (see the module's docstring)."""

    def __init__(self, n=3, extra=(), tls=False):
        require()
        self.dir = tempfile.mkdtemp(prefix="supervise-etcd-")
        self.tls = make_certs(self.dir) if tls else None
        self.token = "t%d" % os.getpid()
        self.extra = list(extra)
        self.members = []
        for attempt in range(3):
            ports = free_ports(2 * n)
            self.members = [Member(self, i, ports[2 * i], ports[2 * i + 1])
                            for i in range(n)]
            self.initial_cluster = ",".join(
                "%s=http://127.0.0.1:%d" % (m.name, m.peer)
                for m in self.members)
            for m in self.members:
                m.start()
            try:
                self.wait_healthy()
                return
            except AssertionError:
                # A port taken meanwhile, most likely: start afresh.
                self.stop_all()
                for m in self.members:
                    shutil.rmtree(os.path.join(self.dir, m.name),
                                  ignore_errors=True)
                if attempt == 2:
                    self.close()
                    raise

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def wait_healthy(self, members=None, timeout=30):
        members = self.members if members is None else members

        def ok():
            return all(m.alive() and m.healthy() for m in members)
        bb.wait_for(ok, timeout, interval=0.05,
                    what="etcd members %s healthy (logs in %s)"
                    % ([m.name for m in members], self.dir))

    def endpoints(self, members=None):
        members = self.members if members is None else members
        return ",".join(m.endpoint for m in members)

    def url(self, name, members=None):
        return "%s://%s/%s" % ("etcds" if self.tls else "etcd",
                               self.endpoints(members), name)

    def leader(self, timeout=20):
        """The member that leads now (waits for an election)."""
        def find():
            for m in self.members:
                st = m.alive() and m.status()
                if st and st.get("leader") == st.get("header", {}).get(
                        "member_id"):
                    return m
            return None
        return bb.wait_for(find, timeout, interval=0.05, what="etcd leader")

    def client(self):
        """An endpoint of a live member, for the test's own requests."""
        for m in self.members:
            if m.alive():
                return "http://" + m.endpoint
        raise AssertionError("no etcd member is running")

    def keys(self, prefix):
        """{key: (create_revision, lease, value)} under prefix."""
        import base64
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        ans = http_json(self.client() + "/v3/kv/range", {
            "key": base64.b64encode(prefix.encode()).decode(),
            "range_end": base64.b64encode(end.encode()).decode()})
        out = {}
        for kv in ans.get("kvs", []):
            out[base64.b64decode(kv["key"]).decode()] = (
                int(kv.get("create_revision", 0)), int(kv.get("lease", 0)),
                base64.b64decode(kv.get("value", "")).decode())
        return out

    def stop_all(self):
        for m in self.members:
            m.stop()

    def close(self):
        self.stop_all()
        shutil.rmtree(self.dir, ignore_errors=True)
