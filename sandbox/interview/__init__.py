"""Interviews with a run's agents and surveys of its crowd (see :mod:`.interviewer`)."""

from sandbox.interview.interviewer import (
    Interviewer,
    InterviewError,
    Reply,
    SurveyResult,
    interview_client,
)

__all__ = ["InterviewError", "Interviewer", "Reply", "SurveyResult", "interview_client"]
