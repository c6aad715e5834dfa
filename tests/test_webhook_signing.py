from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from bridge.secret import Secret
from bridge.webhook_signing import WebhookSigner

# The known-answer vector of the Standard Webhooks specification's reference libraries.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = datetime.fromtimestamp(1614265330, UTC)
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
OTHER_SECRET = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo="


def test_the_specification_vector() -> None:
    headers = WebhookSigner([Secret(SPEC_SECRET)]).headers(SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)
    assert headers == {
        "webhook-id": SPEC_ID,
        "webhook-timestamp": "1614265330",
        "webhook-signature": SPEC_SIGNATURE,
    }


@pytest.mark.parametrize("receiver_secret", [SPEC_SECRET, OTHER_SECRET])
def test_during_a_rotation_a_receiver_with_either_secret_verifies(receiver_secret: str) -> None:
    now = datetime.now(UTC)
    signer = WebhookSigner([Secret(OTHER_SECRET), Secret(SPEC_SECRET)])
    headers = signer.headers("evt_1", now, b'{"type": "call.completed"}')
    assert len(headers["webhook-signature"].split(" ")) == 2
    verified = Webhook(receiver_secret).verify(b'{"type": "call.completed"}', headers)
    assert verified == {"type": "call.completed"}


def test_a_signer_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="at least one secret"):
        WebhookSigner([])
