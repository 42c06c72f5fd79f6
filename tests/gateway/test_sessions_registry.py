"""Device sessions and the staff-driven dongle registry."""

from __future__ import annotations

from sqlalchemy import update

from gateway.db.models import DeviceSession
from tests.gateway.helpers import GatewayUnderTest, Manufacturer, unb64


def test_pending_dongle_cannot_open_a_session_until_activated(gw: GatewayUnderTest) -> None:
    household_no = gw.household()
    dongle = gw.manufacturer.new_dongle()
    dongle.generate_key()
    registered = gw.register(dongle, household_no)
    assert registered.json()["status"] == "pending"
    response = gw.call(
        "POST", "/api/v1/device-sessions/challenge", json={"dongle_id": dongle.dongle_id}
    )
    assert response.json()["error"]["code"] == "dongle_not_active"
    assert gw.activate(dongle).json()["status"] == "active"
    assert gw.open_session(dongle).status_code == 201


def test_revoked_dongle_is_refused_and_its_sessions_end(gw: GatewayUnderTest) -> None:
    dongle, token, _bills = gw.paying_household()
    revoked = gw.staff("POST", f"/dongles/{dongle.dongle_id}/revoke", json={"reason": "lost"})
    assert revoked.json()["status"] == "revoked"
    assert gw.call("GET", "/api/v1/accounts", token).status_code == 401
    challenge = gw.call(
        "POST", "/api/v1/device-sessions/challenge", json={"dongle_id": dongle.dongle_id}
    )
    assert challenge.json()["error"]["code"] == "dongle_not_active"


def test_session_challenge_is_single_use(gw: GatewayUnderTest) -> None:
    dongle = gw.provision(gw.household())
    challenge = gw.call(
        "POST", "/api/v1/device-sessions/challenge", json={"dongle_id": dongle.dongle_id}
    ).json()
    body = {"dongle_id": dongle.dongle_id, **dongle.sign_session(challenge)}
    assert gw.call("POST", "/api/v1/device-sessions", json=body).status_code == 201
    replay = gw.call("POST", "/api/v1/device-sessions", json=body)
    assert replay.json()["error"]["code"] == "challenge_invalid"


def test_expired_session_token_is_refused(gw: GatewayUnderTest) -> None:
    _dongle, token, _bills = gw.paying_household()
    gw.ctx.db.write(lambda s: s.execute(update(DeviceSession).values(expires_at=0)))
    response = gw.call("GET", "/api/v1/household", token)
    assert response.status_code == 401


def test_re_registering_a_pending_dongle_with_a_new_key_supersedes_it(gw: GatewayUnderTest) -> None:
    household_no = gw.household()
    dongle = gw.manufacturer.new_dongle()
    dongle.generate_key()
    gw.register(dongle, household_no)
    dongle.generate_key()  # provisioning interrupted and restarted
    again = gw.register(dongle, household_no)
    assert (again.status_code, again.json()["key_rev"]) == (201, 2)
    assert gw.activate(dongle).json()["status"] == "active"


def test_attestation_from_an_untrusted_factory_is_refused(gw: GatewayUnderTest, tmp_path) -> None:
    rogue = Manufacturer.create(tmp_path, "Rogue CA").new_dongle()
    rogue.generate_key()
    response = gw.register(rogue, gw.household())
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "attestation_invalid"


def test_attestation_nonce_is_single_use(gw: GatewayUnderTest) -> None:
    dongle = gw.manufacturer.new_dongle()
    dongle.generate_key()
    nonce = unb64(gw.staff("POST", "/attestation-nonce", json={}).json()["nonce"])
    body = {"household_no": gw.household(), "attestation": dongle.attest(nonce)}
    assert gw.staff("POST", "/dongles", json=body).status_code == 201
    dongle.generate_key()
    body["attestation"] = dongle.attest(nonce)
    assert gw.staff("POST", "/dongles", json=body).json()["error"]["code"] == "nonce_invalid"


def test_staff_calls_need_a_staff_token(gw: GatewayUnderTest) -> None:
    assert gw.call("GET", "/api/v1/staff/dongles").status_code == 401
    assert gw.call("GET", "/api/v1/staff/dongles", "tvps_wrong").status_code == 401


def test_staff_actions_are_audited(gw: GatewayUnderTest) -> None:
    dongle = gw.provision(gw.household())
    gw.staff("POST", f"/dongles/{dongle.dongle_id}/rebind", json={"household_no": gw.household()})
    entries = gw.staff("GET", "/audit").json()["entries"]
    actions = [(e["actor"], e["action"]) for e in entries if e["target"] == dongle.dongle_id]
    assert actions == [
        ("tester", "dongle_rebind"),
        ("tester", "dongle_activate"),
        ("tester", "dongle_register"),
    ]


def test_binding_checks_the_holder_name(gw: GatewayUnderTest) -> None:
    from gateway.bills_import import import_rows
    from tests.gateway.helpers import bill_rows

    _dongle, token, _bills = gw.paying_household()
    gw.ctx.db.write(lambda s: import_rows(s, bill_rows("9900112233", "李娜", 2, "water"), "t"))
    body = {"utility": "water", "account_no": "9900112233", "holder_name": "王芳"}
    wrong = gw.call("POST", "/api/v1/accounts", token, json=body)
    assert wrong.json()["error"]["code"] == "holder_name_mismatch"
    bound = gw.call("POST", "/api/v1/accounts", token, json={**body, "holder_name": "李娜"})
    assert (bound.status_code, bound.json()["holder_name_masked"]) == (201, "李*")
    usage = gw.call("GET", f"/api/v1/accounts/{bound.json()['account_id']}/usage", token).json()
    assert [m["month"] for m in usage["months"]] == ["2025-01", "2025-02"]
