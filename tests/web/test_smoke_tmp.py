from tests.factories import make_commitment, make_meeting, make_plan


def test_pages(web, people):
    carol = people.carol
    m = make_meeting(people.riverside.id)
    make_plan(carol, m)
    make_commitment(
        carol, kind="meeting_quota", title="3 meetings", rrule="FREQ=WEEKLY", time=None, target=3
    )
    from service.db import db

    db.session.commit()
    for url in ["/", "/clients", f"/clients/{carol.id}", "/meetings", "/account", "/clients/new"]:
        r = web.get(url)
        assert r.status_code == 200, (url, r.get_data(as_text=True)[:3000])
