#!/usr/bin/python3
"""Helpers for scripts/start-swift.sh: a one-machine OpenStack Swift (Debian
12's python3-swift) with the s3api middleware, for the store tests.

  swift_local.py rings ETC_DIR DEVICE ACCOUNT_PORT CONTAINER_PORT OBJECT_PORT
      Builds account/container/object rings (1 replica, one device on
      127.0.0.1) in ETC_DIR, like three `swift-ring-builder create/add/
      rebalance` runs but in one process (about 0.4 s instead of 4 s).
  swift_local.py serve ETC_DIR CONF SECTION
      Runs one Swift WSGI server (SECTION: proxy-server, account-server, ...)
      in the foreground, single process, logging to stderr. Swift reads
      swift.conf (hash prefix/suffix, storage policies) from /etc/swift
      unless told otherwise; this reads ETC_DIR/swift.conf instead, so the
      configuration is self-contained.
  swift_local.py put-bucket ENDPOINT REGION ACCESS_KEY SECRET BUCKET
      Creates BUCKET with a SigV4-signed S3 PUT (standard library only);
      exits 0 if it was created or already belongs to the caller.
  swift_local.py list ENDPOINT ACCOUNT:USER KEY CONTAINER
      Prints the names of the objects in CONTAINER (= the S3 bucket), one a
      line, through Swift's own API (tempauth token, container GET): a
      client independent of S3 and of Event Horizon's.

It is also the module of the proxy's `cache` filter (`DictCache`): Swift's
tempauth needs a memcache client, and an in-process dictionary replaces a
memcached server here (the proxy runs as one process).
"""

import datetime
import hashlib
import hmac
import json
import logging
import os
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request


# --- the proxy's cache filter ---

class DictCache(object):
    """The subset of swift.common.memcached.MemcacheRing that the proxy and
    its middlewares use, in one process. Values go through JSON like they do
    through memcache, so callers see the same types."""

    def __init__(self):
        self._lock = threading.Lock()
        self._items = {}  # key -> (expires at or 0, serialized, value)

    @staticmethod
    def _expiry(timeout):
        timeout = int(timeout or 0)
        if timeout <= 0:
            return 0
        # memcache: up to 30 days is relative, more is a Unix time.
        return timeout if timeout > 30 * 24 * 3600 else time.time() + timeout

    def _live(self, key):
        item = self._items.get(key)
        if item is not None and item[0] and item[0] <= time.time():
            del self._items[key]
            return None
        return item

    def set(self, key, value, serialize=True, time=0, min_compress_len=0,
            raise_on_error=False):
        stored = json.dumps(value) if serialize else value
        with self._lock:
            self._items[key] = (self._expiry(time), serialize, stored)

    def get(self, key, raise_on_error=False):
        with self._lock:
            item = self._live(key)
        if item is None:
            return None
        return json.loads(item[2]) if item[1] else item[2]

    def incr(self, key, delta=1, time=0):
        with self._lock:
            item = self._live(key)
            value = int(item[2]) if item is not None else 0
            value = max(0, value + int(delta))
            self._items[key] = (self._expiry(time), False, str(value))
        return value

    def decr(self, key, delta=1, time=0):
        return self.incr(key, -int(delta), time)

    def delete(self, key, server_key=None):
        with self._lock:
            self._items.pop(key, None)

    def set_multi(self, mapping, server_key, serialize=True, time=0,
                  min_compress_len=0):
        for key, value in mapping.items():
            self.set(key, value, serialize=serialize, time=time)

    def get_multi(self, keys, server_key):
        return [self.get(key) for key in keys]


class CacheMiddleware(object):
    def __init__(self, app, cache):
        self.app = app
        self.cache = cache

    def __call__(self, env, start_response):
        env['swift.cache'] = self.cache
        return self.app(env, start_response)


def filter_factory(global_conf, **local_conf):
    cache = DictCache()
    return lambda app: CacheMiddleware(app, cache)


# --- rings ---

def build_rings(etc_dir, device, ports):
    from swift.common.ring import RingBuilder
    for name, port in zip(('account', 'container', 'object'), ports):
        builder = RingBuilder(part_power=4, replicas=1, min_part_hours=0)
        builder.add_dev({'region': 1, 'zone': 1, 'ip': '127.0.0.1',
                         'port': int(port), 'device': device, 'weight': 1.0,
                         'meta': ''})
        builder.rebalance()
        builder.save(os.path.join(etc_dir, name + '.builder'))
        builder.get_ring().save(os.path.join(etc_dir, name + '.ring.gz'))


# --- one server ---

class _NoSyslog(logging.NullHandler):
    def __init__(self, *args, **kwargs):
        logging.NullHandler.__init__(self)


def serve(etc_dir, conf, section):
    # The cache filter (this module) must be importable by paste.deploy.
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from swift.common import utils
    # Logs go to stderr only: without a syslog daemon Swift would send every
    # line to UDP port 514.
    utils.ThreadSafeSysLogHandler = _NoSyslog
    utils.set_swift_dir(etc_dir)
    from swift.common.storage_policy import reload_storage_policies
    reload_storage_policies()
    from swift.common.wsgi import run_wsgi
    return run_wsgi(conf, section, verbose=True)


# --- an S3 request with SigV4 ---

def _sign(key, msg):
    return hmac.new(key, msg.encode('utf-8'), hashlib.sha256).digest()


def put_bucket(endpoint, region, access_key, secret, bucket):
    url = urllib.parse.urlsplit(endpoint)
    host = url.netloc
    path = '/' + bucket
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date = now.strftime('%Y%m%dT%H%M%SZ')
    day = amz_date[:8]
    payload_hash = hashlib.sha256(b'').hexdigest()
    signed_headers = 'host;x-amz-content-sha256;x-amz-date'
    canonical = '\n'.join([
        'PUT', path, '',
        'host:' + host, 'x-amz-content-sha256:' + payload_hash,
        'x-amz-date:' + amz_date, '',
        signed_headers, payload_hash])
    scope = '%s/%s/s3/aws4_request' % (day, region)
    to_sign = '\n'.join([
        'AWS4-HMAC-SHA256', amz_date, scope,
        hashlib.sha256(canonical.encode('utf-8')).hexdigest()])
    k = _sign(('AWS4' + secret).encode('utf-8'), day)
    for piece in (region, 's3', 'aws4_request'):
        k = _sign(k, piece)
    signature = hmac.new(k, to_sign.encode('utf-8'),
                         hashlib.sha256).hexdigest()
    request = urllib.request.Request(
        endpoint + path, method='PUT', data=b'', headers={
            'Host': host,
            'x-amz-date': amz_date,
            'x-amz-content-sha256': payload_hash,
            'Authorization': 'AWS4-HMAC-SHA256 Credential=%s/%s, '
                             'SignedHeaders=%s, Signature=%s' % (
                                 access_key, scope, signed_headers,
                                 signature)})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode('utf-8', 'replace')
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode('utf-8', 'replace')


# --- a listing through Swift's own API ---

def list_container(endpoint, user, key, container):
    request = urllib.request.Request(endpoint + '/auth/v1.0', headers={
        'X-Auth-User': user, 'X-Auth-Key': key})
    with urllib.request.urlopen(request, timeout=10) as response:
        token = response.headers['X-Auth-Token']
        storage_url = response.headers['X-Storage-Url']
    names = []
    marker = ''
    while True:
        query = urllib.parse.urlencode({'format': 'json', 'marker': marker})
        request = urllib.request.Request(
            storage_url + '/' + urllib.parse.quote(container) + '?' + query,
            headers={'X-Auth-Token': token})
        with urllib.request.urlopen(request, timeout=10) as response:
            page = json.loads(response.read().decode('utf-8'))
        if not page:
            return names
        names.extend(item['name'] for item in page)
        marker = page[-1]['name']


def main(argv):
    if len(argv) == 7 and argv[1] == 'rings':
        build_rings(argv[2], argv[3], argv[4:7])
        return 0
    if len(argv) == 5 and argv[1] == 'serve':
        return serve(argv[2], argv[3], argv[4])
    if len(argv) == 7 and argv[1] == 'put-bucket':
        status, body = put_bucket(*argv[2:7])
        if status == 200 or (status == 409 and
                             'BucketAlreadyOwnedByYou' in body):
            return 0
        sys.stderr.write('swift_local: PUT bucket %s: HTTP %d\n%s\n' %
                         (argv[6], status, body))
        return 1
    if len(argv) == 6 and argv[1] == 'list':
        for name in list_container(*argv[2:6]):
            print(name)
        return 0
    sys.stderr.write(__doc__)
    return 64


if __name__ == '__main__':
    sys.exit(main(sys.argv))
