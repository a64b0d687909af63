# The lab both real-client tests start: a CA and leaf certificates made with the openssl command (as
# common/lab_pki.cpp makes them), and fake-exchange and exbridge started and awaited on their readiness lines
# (never on sleeps), killed on exit.
import select
import subprocess
import threading
import time


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_pki(d, leaves):
    """A lab CA and one leaf certificate per name in `leaves` ({file stem: [DNS names]}), RSA 2048, SHA-256."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", "2", "-subj", "/CN=Exbridge Lab CA",
            "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.crt", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    for name, dns_names in leaves.items():
        san = ",".join([f"DNS:{n}" for n in dns_names] + ["IP:127.0.0.1", "IP:::1"])
        with open(f"{d}/{name}.ext", "w") as f:
            f.write(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
        openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-sha256", "-subj", f"/CN={dns_names[0]}",
                "-keyout", f"{d}/{name}.key", "-out", f"{d}/{name}.csr")
        openssl("x509", "-req", "-in", f"{d}/{name}.csr", "-CA", f"{d}/ca.crt", "-CAkey", f"{d}/ca.key",
                "-CAcreateserial", "-days", "2", "-sha256", "-out", f"{d}/{name}.crt", "-extfile", f"{d}/{name}.ext")


processes = []


def start(argv, log_path, timeout=60):
    """Starts a program and returns HOST:PORT from its readiness line 'listening https HOST:PORT'."""
    log = open(log_path, "w")
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, text=True)
    processes.append(p)
    deadline = time.monotonic() + timeout
    while True:
        ready, _, _ = select.select([p.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise RuntimeError(f"{argv[0]}: no readiness line within {timeout} s (log: {log_path})")
        line = p.stdout.readline()
        if not line:
            raise RuntimeError(f"{argv[0]} exited with {p.wait()} before listening (log: {log_path})")
        if line.startswith("listening https "):
            # Keep draining stdout so that the program never blocks on a full pipe.
            threading.Thread(target=lambda: [None for _ in p.stdout], daemon=True).start()
            return line.split()[2]


def stop_all():
    for p in processes:
        if p.poll() is None:
            p.kill()
            p.wait()
