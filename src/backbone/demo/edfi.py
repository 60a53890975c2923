"""The district on Ed-Fi: the JSON resources an Ed-Fi ODS/API returns.

One JSON array per resource and school year, with references as nested objects and
code values as descriptor URIs (``uri://ed-fi.org/...Descriptor#Value``), as a
district would get from ``GET /data/v3/ed-fi/{resource}``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from backbone.demo.community import District
from backbone.engines import Connection
from backbone.engines.sql import literal
from backbone.model.descriptors import EDFI_NAMESPACE

__all__ = ["write_edfi_district"]


def _d(name: str, col: str) -> str:
    return f"{literal(f'{EDFI_NAMESPACE}/{name}#')} || {col}"


def _resources(d: District, t: int) -> dict[str, str]:
    ed_org = d.ed_org_id
    where = f"partner_id = {literal(d.partner_id)} AND school_year = {int(t)}"
    student = "{'studentUniqueId': local_id}"
    school = "{'schoolId': school_local::BIGINT}"
    return {
        "students": f"""
            SELECT local_id AS studentUniqueId, first_name AS firstName,
                   middle_name AS middleName, last_surname AS lastSurname,
                   generation_code_suffix AS generationCodeSuffix,
                   strftime(birth_date, '%Y-%m-%d') AS birthDate
            FROM x_students WHERE {where} ORDER BY local_id""",
        "studentEducationOrganizationAssociations": f"""
            SELECT {{'educationOrganizationId': {ed_org}}} AS educationOrganizationReference,
                   {student} AS studentReference,
                   {_d("SexDescriptor", "sex")} AS sexDescriptor,
                   hispanic AS hispanicLatinoEthnicity,
                   [{{'raceDescriptor': {_d("RaceDescriptor", "race")}}}] AS races,
                   list_filter([
                       CASE WHEN economic_disadvantaged THEN {{'studentCharacteristicDescriptor':
                           '{EDFI_NAMESPACE}/StudentCharacteristicDescriptor#Economic Disadvantaged'}} END
                   ], lambda x: x IS NOT NULL) AS studentCharacteristics,
                   CASE WHEN english_learner
                        THEN '{EDFI_NAMESPACE}/LimitedEnglishProficiencyDescriptor#Limited'
                        ELSE '{EDFI_NAMESPACE}/LimitedEnglishProficiencyDescriptor#NotLimited'
                   END AS limitedEnglishProficiencyDescriptor,
                   list_filter([
                       CASE WHEN disability THEN {{'disabilityDescriptor':
                           '{EDFI_NAMESPACE}/DisabilityDescriptor#Other Health Impairment'}} END
                   ], lambda x: x IS NOT NULL) AS disabilities,
                   [{{'studentIdentificationSystemDescriptor':
                        '{EDFI_NAMESPACE}/StudentIdentificationSystemDescriptor#State',
                     'assigningOrganizationIdentificationCode': 'State',
                     'identificationCode': state_student_id}}] AS studentIdentificationCodes,
                   [{{'addressTypeDescriptor': '{EDFI_NAMESPACE}/AddressTypeDescriptor#Home',
                     'streetNumberName': address, 'city': {literal(d.name.split()[0])},
                     'stateAbbreviationDescriptor': '{EDFI_NAMESPACE}/StateAbbreviationDescriptor#MN',
                     'postalCode': postal_code}}] AS addresses
            FROM x_students WHERE {where} ORDER BY local_id""",
        "studentSchoolAssociations": f"""
            SELECT {school} AS schoolReference, {student} AS studentReference,
                   strftime(entry_date, '%Y-%m-%d') AS entryDate,
                   {_d("GradeLevelDescriptor", "grade_level")} AS entryGradeLevelDescriptor,
                   {{'schoolYear': school_year}} AS schoolYearTypeReference,
                   strftime(exit_date, '%Y-%m-%d') AS exitWithdrawDate,
                   {_d("ExitWithdrawTypeDescriptor", "exit_type")} AS exitWithdrawTypeDescriptor,
                   {{'schoolYear': class_of}} AS classOfSchoolYearTypeReference
            FROM x_enrollments WHERE {where} ORDER BY local_id, entry_date""",
        "studentSchoolAttendanceEvents": f"""
            SELECT {school} AS schoolReference, {student} AS studentReference,
                   {{'schoolId': school_local::BIGINT, 'schoolYear': school_year,
                     'sessionName': CASE WHEN event_date < make_date(school_year, 1, 15)
                        THEN 'Fall Semester' ELSE 'Spring Semester' END}} AS sessionReference,
                   strftime(event_date, '%Y-%m-%d') AS eventDate,
                   {_d("AttendanceEventCategoryDescriptor", "category")}
                       AS attendanceEventCategoryDescriptor,
                   1.0 AS eventDuration
            FROM x_attendance WHERE {where} ORDER BY local_id, event_date, category""",
        "studentDisciplineIncidentBehaviorAssociations": f"""
            SELECT {{'incidentIdentifier': incident_id, 'schoolId': school_local::BIGINT}}
                       AS disciplineIncidentReference,
                   {student} AS studentReference,
                   {_d("BehaviorDescriptor", "behavior")} AS behaviorDescriptor,
                   [{{'disciplineIncidentParticipationCodeDescriptor':
                      '{EDFI_NAMESPACE}/DisciplineIncidentParticipationCodeDescriptor#Perpetrator'}}]
                       AS disciplineIncidentParticipationCodes,
                   strftime(incident_date, '%Y-%m-%d') AS incidentDate
            FROM x_discipline WHERE {where} ORDER BY incident_id""",
        "disciplineActions": f"""
            SELECT action_id AS disciplineActionIdentifier,
                   strftime(incident_date + INTERVAL 1 DAY, '%Y-%m-%d') AS disciplineDate,
                   {student} AS studentReference,
                   [{{'disciplineDescriptor': {_d("DisciplineDescriptor", "action")}}}]
                       AS disciplines,
                   action_days AS disciplineActionLength,
                   {{'schoolId': school_local::BIGINT}} AS responsibilitySchoolReference,
                   [{{'studentDisciplineIncidentBehaviorAssociationReference':
                      {{'incidentIdentifier': incident_id, 'schoolId': school_local::BIGINT,
                        'studentUniqueId': local_id}}}}] AS studentDisciplineIncidentBehaviorAssociations
            FROM x_discipline WHERE {where} ORDER BY action_id""",
        "courseTranscripts": f"""
            SELECT {{'courseCode': course_code, 'educationOrganizationId': {ed_org}}}
                       AS courseReference,
                   {{'educationOrganizationId': school_local::BIGINT, 'schoolYear': school_year,
                     'studentUniqueId': local_id,
                     'termDescriptor': {_d("TermDescriptor", "term")}}}
                       AS studentAcademicRecordReference,
                   {_d("CourseAttemptResultDescriptor", "result")} AS courseAttemptResultDescriptor,
                   course_title AS courseTitle,
                   [{{'academicSubjectDescriptor':
                      {_d("AcademicSubjectDescriptor", "academic_subject")}}}] AS academicSubjects,
                   credits_attempted AS attemptedCredits, credits_earned AS earnedCredits,
                   letter_grade AS finalLetterGradeEarned,
                   numeric_grade AS finalNumericGradeEarned,
                   {_d("GradeLevelDescriptor", "grade_level")} AS whenTakenGradeLevelDescriptor
            FROM x_courses WHERE {where} ORDER BY local_id, term, course_code""",
        "studentAcademicRecords": f"""
            SELECT g.* EXCLUDE (local_id, term), d.diplomas FROM (
            SELECT {{'educationOrganizationId': school_local::BIGINT}} AS educationOrganizationReference,
                   {{'schoolYear': school_year}} AS schoolYearTypeReference,
                   {student} AS studentReference,
                   {_d("TermDescriptor", "term")} AS termDescriptor,
                   att AS sessionAttemptedCredits, earned AS sessionEarnedCredits,
                   cumulative_credits AS cumulativeEarnedCredits,
                   [{{'gradePointAverageTypeDescriptor':
                        '{EDFI_NAMESPACE}/GradePointAverageTypeDescriptor#Unweighted',
                      'isCumulative': false, 'gradePointAverageValue': round(term_gpa, 2)}},
                    {{'gradePointAverageTypeDescriptor':
                        '{EDFI_NAMESPACE}/GradePointAverageTypeDescriptor#Unweighted',
                      'isCumulative': true, 'gradePointAverageValue': cumulative_gpa}}]
                       AS gradePointAverages,
                   local_id, term
            FROM x_gpa WHERE {where}) g
            LEFT JOIN (
                SELECT local_id, 'Spring Semester' AS term,
                       [{{'diplomaTypeDescriptor': {_d("DiplomaTypeDescriptor", "diploma_type")},
                          'diplomaAwardDate': strftime(graduation_date, '%Y-%m-%d')}}] AS diplomas
                FROM x_graduates WHERE {where}) d
              ON d.local_id = g.local_id AND d.term = g.term
            ORDER BY g.local_id, g.term""",
        "studentAssessments": f"""
            SELECT local_id || '-' || assessment_id || '-' || school_year
                       AS studentAssessmentIdentifier,
                   {{'assessmentIdentifier': assessment_id, 'namespace': '{EDFI_NAMESPACE}'}}
                       AS assessmentReference,
                   {student} AS studentReference,
                   strftime(administration_date, '%Y-%m-%d') AS administrationDate,
                   {{'schoolYear': school_year}} AS schoolYearTypeReference,
                   {_d("GradeLevelDescriptor", "grade_level")} AS whenAssessedGradeLevelDescriptor,
                   [{{'assessmentReportingMethodDescriptor':
                        '{EDFI_NAMESPACE}/AssessmentReportingMethodDescriptor#Scale score',
                      'resultDatatypeTypeDescriptor':
                        '{EDFI_NAMESPACE}/ResultDatatypeTypeDescriptor#Integer',
                      'result': CAST(CAST(scale_score AS BIGINT) AS VARCHAR)}}] AS scoreResults,
                   [{{'assessmentReportingMethodDescriptor':
                        '{EDFI_NAMESPACE}/AssessmentReportingMethodDescriptor#Scale score',
                      'performanceLevelDescriptor':
                        {_d("PerformanceLevelDescriptor", "performance_level")},
                      'performanceLevelMet': true}}] AS performanceLevels
            FROM x_assessments WHERE {where} ORDER BY local_id, assessment_id""",
    }


def write_edfi_district(
    con: Connection,
    d: District,
    school_years: list[int],
    out: Path,
    say: Callable[[str], None],
) -> list[Path]:
    written: list[Path] = []
    for t in school_years:
        folder = out / str(t)
        folder.mkdir(parents=True, exist_ok=True)
        for resource, sql in _resources(d, t).items():
            path = folder / f"{resource}.json"
            con.execute(
                f"COPY ({sql}) TO {literal(str(path))} (FORMAT json, ARRAY true)"
            )
            written.append(path)
        say(f"{d.partner_id}: wrote {t}")
    return written
