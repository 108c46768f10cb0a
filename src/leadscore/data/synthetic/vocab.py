"""The vocabularies the generator draws from: industries, countries, titles, sources, content, dates."""

from __future__ import annotations

import numpy as np

INDUSTRIES = (
    "Software",
    "Financial Services",
    "Healthcare",
    "Manufacturing",
    "Retail",
    "Education",
    "Government",
    "Media",
    "Logistics",
    "Energy",
)


INDUSTRY_W = (0.18, 0.12, 0.11, 0.13, 0.10, 0.09, 0.06, 0.07, 0.08, 0.06)


ICP_INDUSTRIES = ("Software", "Financial Services", "Healthcare", "Manufacturing")


COUNTRIES = (
    ("United States", "North America", 0.30),
    ("Canada", "North America", 0.05),
    ("United Kingdom", "Europe", 0.10),
    ("Germany", "Europe", 0.08),
    ("France", "Europe", 0.06),
    ("Netherlands", "Europe", 0.04),
    ("Spain", "Europe", 0.03),
    ("India", "APAC", 0.12),
    ("Australia", "APAC", 0.05),
    ("Japan", "APAC", 0.04),
    ("Singapore", "APAC", 0.03),
    ("Brazil", "LATAM", 0.06),
    ("Mexico", "LATAM", 0.04),
)


COUNTRY_VARIANTS = {
    "United States": ("USA", "U.S.", "united states", "US"),
    "United Kingdom": ("UK", "Great Britain", "united kingdom"),
    "Germany": ("Deutschland", "germany"),
    "India": ("india", "IN"),
    "Netherlands": ("The Netherlands", "Holland"),
}


TECH_STACKS = ("Salesforce", "HubSpot", "Microsoft Dynamics", "Zoho", "Pipedrive", "None")


TECH_W = (0.28, 0.22, 0.12, 0.08, 0.07, 0.23)


SENIORITIES = ("C-level", "VP", "Director", "Manager", "Individual Contributor", "Student")


SENIORITY_W = (0.05, 0.08, 0.15, 0.27, 0.38, 0.07)


DEPARTMENTS = ("Marketing", "Sales", "IT", "Operations", "Finance", "HR", "Engineering")


DEPARTMENT_W = (0.24, 0.18, 0.16, 0.13, 0.10, 0.07, 0.12)


SOURCES = (
    "Organic Search",
    "Paid Search",
    "Paid Social",
    "Webinar",
    "Referral",
    "Event",
    "Content Syndication",
    "Outbound",
    "Direct",
)


SOURCE_W = (0.22, 0.16, 0.12, 0.10, 0.06, 0.07, 0.12, 0.08, 0.07)


DRIFT_SOURCE = "AI Assistant"


FREEMAIL = ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com")


DISQUALIFY_REASONS = ("not ICP", "duplicate", "bad data", "student/research", "competitor")


PLACEHOLDER_VALUES = ("Select", "N/A")


PLACEHOLDER_COLUMNS = ("job_title", "industry", "department", "tech_stack")


CONTENT = {
    "top": ("State of B2B Marketing Report", "Beginner's eBook", "Industry Trends Infographic"),
    "mid": ("Implementation Guide", "ROI Calculator", "Customer Case Study"),
    "bottom": ("Pricing Sheet", "Security Whitepaper", "Migration Checklist"),
}


NAME_A = (
    "North",
    "Blue",
    "Bright",
    "Iron",
    "Silver",
    "Cedar",
    "Summit",
    "Harbor",
    "Quantum",
    "Nova",
    "Atlas",
    "Pioneer",
    "Vertex",
    "Apex",
    "Crystal",
    "Granite",
    "Maple",
    "Orbit",
    "Polar",
    "Sage",
)


NAME_B = (
    "wind",
    "field",
    "stone",
    "bridge",
    "point",
    "works",
    "gate",
    "line",
    "path",
    "ridge",
    "labs",
    "soft",
    "logic",
    "data",
    "cloud",
    "scale",
    "forge",
    "grid",
    "mark",
    "wave",
)


FIRST_NAMES = ("alex", "sam", "maria", "li", "omar", "anna", "raj", "emma", "noah", "sofia", "yuki", "lucas")


LAST_NAMES = ("smith", "garcia", "chen", "patel", "muller", "rossi", "kim", "silva", "novak", "brown")


BASE_START = np.datetime64("2024-01-01T00:00:00", "ms")


BASE_MONTHS = 20


DRIFT_START = np.datetime64("2025-09-01T00:00:00", "ms")


DRIFT_MONTHS = 6


DAY_MS = 86_400_000
EXPORT_LAG_DAYS = 7.0  # an export is taken a week after the last lead was scored


def choice(rng: np.random.Generator, n: int, weights: tuple[float, ...]) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    return rng.choice(len(w), size=n, p=w / w.sum()).astype(np.int16)


REPS = ("Ana Ruiz", "Ben Okafor", "Chloe Martin", "Dev Patel", "Eva Novak", "Farid Haddad")
