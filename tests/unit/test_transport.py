from datetime import UTC, datetime

import pytest
import requests
from sentinelhub.exceptions import DownloadFailedException

from canopywatch.download import CorruptSceneError, DownloadOutcome
from canopywatch.messages import DeadLetter, DownloadRequest
from canopywatch.transport import is_poison, run_download_batch


class Message:
    def __init__(self, value, offset=0, key=b"k"):
        self._value, self._offset, self._key = value, offset, key

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
        return None


class Producer:
    def __init__(self):
        self.sent = []
        self.flushed = 0

    def produce(self, topic, value, key=None):
        self.sent.append((topic, value, key))

    def flush(self, timeout=0):
        self.flushed += 1
        return 0


def request_json(request_id):
    return DownloadRequest(
        request_id=request_id,
        aoi_id="demo",
        tile_id="r0c0",
        bbox=(0, 0, 1, 1),
        epsg=32631,
        utm_bounds=(0, 0, 10, 10),
        width=1,
        height=1,
        acquired_at=datetime(2024, 1, 1, tzinfo=UTC),
        time_from=datetime(2024, 1, 1, tzinfo=UTC),
        time_to=datetime(2024, 1, 2, tzinfo=UTC),
        function="ndvi",
        max_cloud=50,
        resolution=10,
    ).to_bytes()


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
    producer = Producer()

    def download(request):
        if request.request_id == "flaky":
            raise ConnectionError("minio down")
        return DownloadOutcome(request.request_id, "k", "downloaded", 1, None)

    with pytest.raises(ConnectionError):
        run_download_batch(
            [Message(request_json("ok")), Message(request_json("flaky"))], download, producer, "t"
        )
    assert producer.flushed == 1
