from datetime import UTC, datetime

import pytest
import requests
from sentinelhub.exceptions import DownloadFailedException

from canopywatch.download import CorruptSceneError, DownloadOutcome, download_scene
from canopywatch.messages import DeadLetter, DownloadRequest, SceneDownloaded
from canopywatch.storage.objects import StoredObject, sha256
from canopywatch.transport import UndeliveredError, is_poison, run_download_batch
from tests.unit.test_download import geotiff


class Message:
    def __init__(self, value, offset=0, key=b"k", error=None):
        self._value, self._offset, self._key, self._error = value, offset, key, error

    def value(self):
        return self._value

    def key(self):
        return self._key

    def topic(self):
        return "canopywatch.download-requests"

    def partition(self):
        return 0

    def offset(self):
        return self._offset

    def error(self):
        return self._error


class Producer:
    """A fake Kafka producer that can refuse delivery like the real one.

    ``queued``: flush leaves every message in the queue and returns their count
    (broker unreachable within the timeout); ``error``: flush runs each message's
    delivery callback with this error (broker refused it). ``sent`` holds only what
    was delivered.
    """

    def __init__(self, *, queued=False, error=None):
        self.queued, self.error = queued, error
        self.sent = []
        self._pending = []

    def produce(self, topic, value, key=None, on_delivery=None):
        self._pending.append(((topic, value, key), on_delivery))

    def flush(self, timeout=0):
        if self.queued:
            return len(self._pending)
        for record, on_delivery in self._pending:
            if self.error is None:
                self.sent.append(record)
            if on_delivery is not None:
                on_delivery(self.error, None)
        self._pending = []
        return 0


def request(request_id, **changes):
    fields = {
        "request_id": request_id,
        "aoi_id": "demo",
        "tile_id": "r0c0",
        "bbox": (0, 0, 1, 1),
        "epsg": 32631,
        "utm_bounds": (0, 0, 10, 10),
        "width": 1,
        "height": 1,
        "acquired_at": datetime(2024, 1, 1, tzinfo=UTC),
        "time_from": datetime(2024, 1, 1, tzinfo=UTC),
        "time_to": datetime(2024, 1, 2, tzinfo=UTC),
        "function": "ndvi",
        "max_cloud": 50,
        "resolution": 10,
    }
    return DownloadRequest(**(fields | changes))


def request_json(request_id):
    return request(request_id).to_bytes()


class MemoryStore:
    bucket = "canopywatch"

    def __init__(self):
        self.objects = {}

    def head(self, key):
        return self.objects.get(key)

    def put(self, key, data, content_type, metadata):
        checksum = sha256(data)
        self.objects[key] = StoredObject(key, len(data), checksum, dict(metadata))
        return checksum


def http_error(status):
    response = requests.Response()
    response.status_code = status
    return DownloadFailedException(
        "failed", request_exception=requests.HTTPError(response=response)
    )


def test_poison_classification():
    assert is_poison(CorruptSceneError("x"))
    assert is_poison(http_error(400))
    assert not is_poison(http_error(429))
    assert not is_poison(http_error(503))
    assert not is_poison(http_error(401))
    assert not is_poison(ConnectionError("minio down"))


def test_batch_dead_letters_poison_and_lets_the_rest_flow():
    producer = Producer()

    def download(request):
        if request.request_id == "bad":
            raise http_error(400)
        return DownloadOutcome(
            request.request_id, f"k/{request.request_id}", "downloaded", 10, None
        )

    messages = [
        Message(request_json("a"), 0),
        Message(b"{not json", 1),
        Message(request_json("bad"), 2),
    ]
    report = run_download_batch(
        messages, download, producer, "canopywatch.scenes-downloaded", concurrency=2
    )
    assert [o.request_id for o in report.downloaded] == ["a"]
    letters = [DeadLetter.from_json(v) for t, v, _ in producer.sent if t.endswith(".dlq")]
    assert sorted(letter.offset for letter in letters) == [1, 2]
    assert all(t == "canopywatch.download-requests.dlq" for t, _, _ in producer.sent)
    assert "DownloadRequest" in letters[0].error and letters[0].payload == "{not json"


def test_transient_failure_is_raised_after_publishing_finished_work():
    producer, store = Producer(), MemoryStore()
    ok = request("ok", function="s2l2a_bands", width=20, height=10)

    def download(req):
        if req.request_id == "flaky":
            raise ConnectionError("minio down")
        return download_scene(req, lambda r, f: geotiff(), store)

    with pytest.raises(ConnectionError, match="minio down"):
        run_download_batch(
            [Message(ok.to_bytes()), Message(request_json("flaky"))], download, producer, "t"
        )
    # the finished request is announced (delivered) before the retry is asked for
    [(topic, value, _)] = producer.sent
    assert topic == "t" and SceneDownloaded.from_json(value).request_id == "ok"


def _scene_batch(producer, store, fetched):
    scene = request("r1", function="s2l2a_bands", width=20, height=10, run_id="manual__2024-01-01")

    def fetch(req, function):
        fetched.append(req.request_id)
        return geotiff()

    return run_download_batch(
        [Message(scene.to_bytes())],
        lambda req: download_scene(req, fetch, store),
        producer,
        "t.scenes-downloaded",
    )


@pytest.mark.parametrize(
    ("refusing", "message"),
    [
        (Producer(queued=True), r"1 message\(s\) still queued .* 0 refused"),
        (
            Producer(error="KafkaError{code=MSG_TIMED_OUT}"),
            r"0 message.* 1 refused .*MSG_TIMED_OUT",
        ),
    ],
)
def test_an_undelivered_announcement_fails_the_batch_and_the_retry_announces_it(refusing, message):
    store, fetched = MemoryStore(), []
    # the scene is stored but its announcement is not delivered: the batch raises, so
    # the consumer does not commit the request's offset and the task retry redelivers it
    with pytest.raises(UndeliveredError, match=message):
        _scene_batch(refusing, store, fetched)
    assert refusing.sent == [] and len(store.objects) == 1
    # the retry (same run) does not fetch again but announces the stored scene
    producer = Producer()
    report = _scene_batch(producer, store, fetched)
    assert fetched == ["r1"]
    assert [o.status for o in report.skipped] == ["skipped"] and report.downloaded == []
    [(topic, value, _key)] = producer.sent
    announced = SceneDownloaded.from_json(value)
    assert topic == "t.scenes-downloaded" and announced.request_id == "r1"
    assert announced.skipped is True and announced.raw_key == next(iter(store.objects))


def test_an_undelivered_dead_letter_fails_the_batch():
    with pytest.raises(UndeliveredError, match="1 refused"):
        run_download_batch(
            [Message(b"{not json")], lambda r: None, Producer(error="broker down"), "t"
        )


def test_undelivered_announcements_are_reported_even_when_a_transient_failure_follows():
    def download(req):
        if req.request_id == "flaky":
            raise ConnectionError("minio down")
        return DownloadOutcome(req.request_id, "k", "downloaded", 1, None)

    with pytest.raises(UndeliveredError) as raised:
        run_download_batch(
            [Message(b"{not json"), Message(request_json("flaky"))],
            download,
            Producer(queued=True),
            "t",
        )
    assert isinstance(raised.value.__cause__, ConnectionError)


def test_a_consumer_error_fails_the_batch_before_anything_is_downloaded():
    producer, downloads = Producer(), []
    messages = [
        Message(request_json("a")),
        Message(None, 1, error="KafkaError{code=_TRANSPORT}"),
    ]
    with pytest.raises(RuntimeError, match=r"Kafka consumer error: KafkaError\{code=_TRANSPORT\}"):
        run_download_batch(messages, downloads.append, producer, "t")
    assert downloads == [] and producer.sent == []
