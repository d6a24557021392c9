"""The Writer's HTTPS API for the Python end-to-end tests (kill9_a1.py,
shipping_load.py): token and CA from a data directory's client.env and
ca.pem, keep-alive connections, JSON POSTs."""
import http.client
import json
import os
import ssl


class Api:
    def __init__(self, data):
        self.token = None
        with open(os.path.join(data, "client.env")) as f:
            for line in f:
                if line.startswith("HORIZON_TOKEN="):
                    self.token = line.strip().split("=", 1)[1]
        if not self.token:
            raise RuntimeError("no HORIZON_TOKEN in client.env")
        self.ctx = ssl.create_default_context(cafile=os.path.join(data, "ca.pem"))
        self.ctx.check_hostname = True
        self.ctx.verify_mode = ssl.CERT_REQUIRED
        self.headers = {"Authorization": "Bearer " + self.token, "Content-Type": "application/json"}

    def connect(self, addr, timeout):
        """An open HTTPS connection to addr = (host, port)."""
        conn = http.client.HTTPSConnection(addr[0], addr[1], context=self.ctx, timeout=timeout)
        try:
            conn.connect()
        except BaseException:
            conn.close()
            raise
        return conn

    def post(self, conn, path, obj):
        """(status, body); closes conn when the server said it will close."""
        conn.request("POST", path, body=json.dumps(obj).encode(), headers=self.headers)
        resp = conn.getresponse()
        body = resp.read()
        if resp.will_close:
            conn.close()
        return resp.status, body
