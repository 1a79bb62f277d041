"""The example responses printed in the Continu API reference, fed through the streams."""

from __future__ import annotations

import json

import pytest
import requests

from tap_continu.tap import TapContinu

# The 200 examples of the reference's Assessments, Assignments, Learning Tracks, Workshops
# and Users sections, unchanged.
EXAMPLES = {
    "assessments": [
        {
            "assessments": [
                {
                    "attempts": 1,
                    "completion_status": "Passed",
                    "grading_status": "Completed",
                    "id": "5b72efb05e8e1534c818ec81",
                    "passed_date": "2018-09-11T17:23:06.667-06:00",
                    "score": 100,
                    "start_date": "2018-09-06T17:07:20.942-06:00",
                    "title": "Designing for the Modern Workplace",
                    "type": "Video Coaching",
                }
            ],
            "email": "theresa@continu.co",
            "first_name": "Theresa",
            "last_name": "Jenkins",
            "user_id": "56b1258a9f176c1100e7e993",
        }
    ],
    "assignments": [
        {
            "assignments": [
                {
                    "assigned_content": [
                        {
                            "completed_date": "2019-09-04T14:24:16.393-06:00",
                            "content_id": "54e6411129b6698c270000d6",
                            "content_title": "Sales Enablement Track",
                            "content_type": "Track",
                        }
                    ],
                    "assigned_date": "2019-09-01T14:24:16.393-06:00",
                    "assignment_id": "57bdd6624487471000e2bf3a",
                    "completed": True,
                    "completed_date": "2019-09-04T14:24:16.393-06:00",
                    "completion_status": "Completed - On Time",
                    "due_date": "2019-09-05T14:24:16.393-06:00",
                }
            ],
            "email": "stanleybond@continu.co",
            "first_name": "Stanly",
            "last_name": "Bond",
            "user_id": "551b3553932def2b1e000019",
        }
    ],
    "tracks": [
        {
            "email": "ferdinand@continu.co",
            "first_name": "Ferdinand",
            "last_name": "Danton",
            "tracks": [
                {
                    "completed": True,
                    "completed_date": "2019-07-19T15:32:53.744-06:00",
                    "duration": 5,
                    "id": "5d6fea50ca2bc5000fdf7dd6",
                    "name": "Sales Tools for Teams",
                    "progress": 100,
                    "start_date": "2019-07-19T15:16:54.744-06:00",
                }
            ],
            "user_id": "5aa15c20f070380bcd59214c",
        }
    ],
    "workshops": [
        {
            "email": "mark@continu.co",
            "first_name": "Mark",
            "last_name": "Schumacher",
            "user_id": "5aa15c20f070380bcd59214c",
            "workshops": [
                {
                    "date": "2020-04-28T09:13:30.466-06:00",
                    "facilitator": "Ferdinand Danton",
                    "id": "5aa15c20f070380bcd59214c",
                    "status": "attended",
                    "title": "Full Zoom Workshop",
                }
            ],
        }
    ],
    "users": [
        {
            "created_at": "2020-01-28T09:13:30.466-06:00",
            "email": "theresa@continu.co",
            "first_login": "2020-01-28T09:13:30.466-06:00",
            "first_name": "Theresa",
            "full_name": "Theresa Jenkins",
            "hired_on": "2020-04-28T09:13:30.466-06:00",
            "id": "56b1258a9f176c1100e7e993",
            "image": "https://d2277n3gvptnup.cloudfront.net/images/afcaf0c3-b0db-4313-b42e-bcabdfae35cb.jpg",
            "is_collaborator": True,
            "is_manager": False,
            "is_suspended": False,
            "job_title": "Marketing Manager",
            "language": "en",
            "last_login": "2020-04-28T09:13:30.466-06:00",
            "last_name": "Jenkins",
            "linked_departments": ["56b9938a9f176c1100e7e156"],
            "linked_locations": ["56b9938a9f176c1100e7e125"],
            "linked_teams": ["56b9938a9f176c1100e7e156"],
            "role": "user",
            "suspended_on": "2020-04-28T09:13:30.466-06:00",
            "updated_at": "2020-04-28T09:13:30.466-06:00",
            "userid": "123456789",
        }
    ],
}

EXPECTED = {
    "assessments": {
        "user_id": "56b1258a9f176c1100e7e993",
        "email": "theresa@continu.co",
        "id": "5b72efb05e8e1534c818ec81",
        "attempts": 1,
        "score": 100,
        "completion_status": "Passed",
        "grading_status": "Completed",
        "passed_date": "2018-09-11T23:23:06.667000+00:00",
        "start_date": "2018-09-06T23:07:20.942000+00:00",
        "title": "Designing for the Modern Workplace",
        "type": "Video Coaching",
    },
    "assignments": {
        "user_id": "551b3553932def2b1e000019",
        "email": "stanleybond@continu.co",
        "assignment_id": "57bdd6624487471000e2bf3a",
        "assigned_content": [
            {
                "completed_date": "2019-09-04T20:24:16.393000+00:00",
                "content_id": "54e6411129b6698c270000d6",
                "content_title": "Sales Enablement Track",
                "content_type": "Track",
            }
        ],
        "assigned_date": "2019-09-01T20:24:16.393000+00:00",
        "completed": True,
        "completed_date": "2019-09-04T20:24:16.393000+00:00",
        "completion_status": "Completed - On Time",
        "due_date": "2019-09-05T20:24:16.393000+00:00",
    },
    "tracks": {
        "user_id": "5aa15c20f070380bcd59214c",
        "email": "ferdinand@continu.co",
        "id": "5d6fea50ca2bc5000fdf7dd6",
        "completed": True,
        "completed_date": "2019-07-19T21:32:53.744000+00:00",
        "duration": 5,
        "name": "Sales Tools for Teams",
        "progress": 100,
        "start_date": "2019-07-19T21:16:54.744000+00:00",
    },
    "workshops": {
        "user_id": "5aa15c20f070380bcd59214c",
        "email": "mark@continu.co",
        "id": "5aa15c20f070380bcd59214c",
        "date": "2020-04-28T15:13:30.466000+00:00",
        "facilitator": "Ferdinand Danton",
        "status": "attended",
        "title": "Full Zoom Workshop",
    },
}


def response_for(body: object) -> requests.Response:
    response = requests.Response()
    response.status_code = 200
    response._content = json.dumps(body).encode()
    response.headers["Content-Type"] = "application/json"
    return response


def records_for(stream_name: str) -> list[dict]:
    tap = TapContinu(config={"client_id": "id", "client_secret": "secret"})
    stream = tap.streams[stream_name]
    response = response_for(EXAMPLES[stream_name])
    stream.validate_response(response)
    records = [stream.post_process(record) for record in stream.parse_response(response)]
    return [record for record in records if record is not None]


@pytest.mark.parametrize("stream_name", ["assessments", "assignments", "tracks", "workshops"])
def test_completion_example(stream_name: str) -> None:
    assert records_for(stream_name) == [EXPECTED[stream_name]]


def test_users_example() -> None:
    [record] = records_for("users")
    example = EXAMPLES["users"][0]
    assert record["id"] == example["id"]
    assert record["email"] == example["email"]
    assert record["updated_at"] == "2020-04-28T15:13:30.466000+00:00"
    assert record["created_at"] == "2020-01-28T15:13:30.466000+00:00"
    assert record["linked_teams"] == example["linked_teams"]
    assert record["is_collaborator"] is True
    assert record["is_manager"] is False
    assert set(record) == set(example)
