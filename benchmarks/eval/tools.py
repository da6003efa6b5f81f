"""Deterministic tools for the evaluation: small fixed worlds (markets, weather, shop, stock room, travel, staff).

Every function returns the same data on every call, so each task has one right answer computed from these
tables (see ``tasks.py``). Some raise on purpose: a script must handle the error to finish the task.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

# -- markets ---------------------------------------------------------------------------------------------

PRICES = {"AAPL": 190.5, "MSFT": 412.25, "GOOG": 141.8, "AMZN": 178.4, "NVDA": 121.6, "TSLA": 248.9}
HOLDINGS = {
    "A-17": [{"ticker": "AAPL", "shares": 12}, {"ticker": "NVDA", "shares": 40}, {"ticker": "TSLA", "shares": 3}],
    "B-02": [{"ticker": "MSFT", "shares": 7}, {"ticker": "GOOG", "shares": 25}, {"ticker": "AMZN", "shares": 10}],
    "C-33": [{"ticker": "AAPL", "shares": 5}, {"ticker": "MSFT", "shares": 5}, {"ticker": "AMZN", "shares": 20}],
}
FX_PER_USD = {"EUR": 0.92, "GBP": 0.79, "JPY": 151.0, "CHF": 0.88}


def get_price(ticker: str) -> float:
    """Latest price of one share of `ticker` in USD. Raises KeyError for an unknown ticker."""
    return PRICES[ticker.upper()]


def get_holdings(account: str) -> list[dict[str, Any]]:
    """Positions of a brokerage account: [{"ticker": str, "shares": int}]."""
    return [dict(p) for p in HOLDINGS[account]]


def get_fx_rate(currency: str) -> float:
    """How many units of `currency` one USD buys (e.g. EUR). Raises ValueError for unsupported currencies."""
    if currency.upper() not in FX_PER_USD:
        raise ValueError(f"unsupported currency: {currency}")
    return FX_PER_USD[currency.upper()]


# -- weather ---------------------------------------------------------------------------------------------

BASE_TEMP = {"Paris": 14.0, "Rome": 19.0, "Oslo": 6.0, "Madrid": 21.0, "Berlin": 11.0}
DAY_SHIFT = [0.0, 1.5, -2.0, 3.0, 2.5, -1.0, 4.0]  # days 1..7


def get_temperature(city: str, day: int) -> float:
    """Mean temperature in °C in `city` on `day` (1–7) of the week."""
    if not 1 <= day <= 7:
        raise ValueError("day must be between 1 and 7")
    return round(BASE_TEMP[city] + DAY_SHIFT[day - 1] + (len(city) % 3) * 0.5, 1)


# -- shop: customers, orders, products --------------------------------------------------------------------

CUSTOMERS = [
    {"id": "C1", "name": "Ada", "country": "UK"},
    {"id": "C2", "name": "Bruno", "country": "IT"},
    {"id": "C3", "name": "Chen", "country": "SG"},
    {"id": "C4", "name": "Dana", "country": "US"},
]
PRODUCTS = {
    "P1": {"name": "Notebook", "price": 4.5, "category": "stationery"},
    "P2": {"name": "Novel", "price": 12.0, "category": "books"},
    "P3": {"name": "Atlas", "price": 30.0, "category": "books"},
    "P4": {"name": "Pen", "price": 1.25, "category": "stationery"},
    "P5": {"name": "Lamp", "price": 22.0, "category": "home"},
}
ORDERS = {
    "C1": [{"order_id": 101, "product_id": "P2", "qty": 2}, {"order_id": 102, "product_id": "P4", "qty": 10}],
    "C2": [{"order_id": 103, "product_id": "P5", "qty": 1}, {"order_id": 104, "product_id": "P3", "qty": 1}],
    "C3": [
        {"order_id": 105, "product_id": "P1", "qty": 6},
        {"order_id": 106, "product_id": "P2", "qty": 1},
        {"order_id": 107, "product_id": "P5", "qty": 2},
    ],
    "C4": [{"order_id": 108, "product_id": "P4", "qty": 4}],
}


def list_customers() -> list[dict[str, Any]]:
    """All customers: [{"id": str, "name": str, "country": str}]."""
    return [dict(c) for c in CUSTOMERS]


def get_orders(customer_id: str) -> list[dict[str, Any]]:
    """Orders of one customer: [{"order_id": int, "product_id": str, "qty": int}]."""
    return [dict(o) for o in ORDERS[customer_id]]


def get_product(product_id: str) -> dict[str, Any]:
    """One product: {"name": str, "price": float, "category": str}."""
    return dict(PRODUCTS[product_id])


# -- stock room (a tool that raises) -----------------------------------------------------------------------

STOCK = {"SKU-1": 40, "SKU-2": 0, "SKU-4": 15, "SKU-5": 7, "SKU-7": 22}
SKUS = ["SKU-1", "SKU-2", "SKU-3", "SKU-4", "SKU-5", "SKU-6", "SKU-7"]


def get_stock(sku: str) -> int:
    """Units of `sku` in stock. Raises LookupError("discontinued: ...") for a discontinued SKU."""
    if sku not in STOCK:
        raise LookupError(f"discontinued: {sku}")
    return STOCK[sku]


# -- travel ------------------------------------------------------------------------------------------------

FLIGHTS = {
    ("NYC", "LAX", "2026-12-03"): [("AB100", 320), ("CD210", 275), ("EF330", 410)],
    ("NYC", "LAX", "2026-12-04"): [("AB102", 260), ("CD212", 299)],
    ("NYC", "LAX", "2026-12-05"): [("AB104", 350)],
    ("NYC", "MIA", "2026-12-03"): [("GH500", 180), ("IJ610", 205)],
}
HOTEL_PER_NIGHT = {"LAX": 150.0, "MIA": 210.0}


def find_flights(origin: str, destination: str, date: str) -> list[dict[str, Any]]:
    """Flights on `date` (YYYY-MM-DD): [{"flight": str, "price": int}] (USD); [] when there are none."""
    return [{"flight": f, "price": p} for f, p in FLIGHTS.get((origin, destination, date), [])]


def get_hotel_price(city: str, nights: int) -> float:
    """Total price in USD of a hotel in `city` (an airport code like LAX) for `nights` nights."""
    return HOTEL_PER_NIGHT[city] * nights


# -- staff -------------------------------------------------------------------------------------------------

DEPARTMENTS = {"eng": ["E1", "E2", "E3", "E4"], "sales": ["E5", "E6", "E7"]}
EMPLOYEES = {
    "E1": {"name": "Iris", "salary": 98000, "start_year": 2019},
    "E2": {"name": "Jonas", "salary": 87000, "start_year": 2021},
    "E3": {"name": "Kemal", "salary": 105000, "start_year": 2016},
    "E4": {"name": "Lena", "salary": 76000, "start_year": 2023},
    "E5": {"name": "Marta", "salary": 64000, "start_year": 2014},
    "E6": {"name": "Nils", "salary": 71000, "start_year": 2018},
    "E7": {"name": "Olga", "salary": 69000, "start_year": 2020},
}


def get_department(name: str) -> list[str]:
    """Employee ids of a department ("eng" or "sales")."""
    return list(DEPARTMENTS[name])


def get_employee(employee_id: str) -> dict[str, Any]:
    """One employee: {"name": str, "salary": int, "start_year": int}."""
    return dict(EMPLOYEES[employee_id])


# -- calculator and units (M3ToolEval-style single-purpose tools) ------------------------------------------


def multiply(a: float, b: float) -> float:
    """a × b."""
    return a * b


def add(a: float, b: float) -> float:
    """a + b."""
    return a + b


def convert_units(value: float, unit: str) -> float:
    """Convert `value` from `unit` ("mile", "pound" or "fahrenheit") to km, kg or °C."""
    if unit == "mile":
        return value * 1.609344
    if unit == "pound":
        return value * 0.45359237
    if unit == "fahrenheit":
        return (value - 32) * 5 / 9
    raise ValueError(f"unknown unit {unit!r}")


# -- a DataFrame handed over with --data --------------------------------------------------------------------


def make_sales() -> pd.DataFrame:
    """120 deterministic sales rows: date, region, product, units, price."""
    regions = ["north", "south", "east", "west"]
    products = ["widget", "gadget", "gizmo"]
    rows = []
    for i in range(120):
        rows.append(
            {
                "date": pd.Timestamp("2026-01-01") + pd.Timedelta(days=(i * 3) % 180),
                "region": regions[(i * 7) % 4],
                "product": products[(i * 5) % 3],
                "units": (i * 13) % 17 + 1,
                "price": [9.5, 14.0, 22.75][(i * 5) % 3],
            }
        )
    return pd.DataFrame(rows)


def get_sales_rows() -> list[dict[str, Any]]:
    """The `sales` table as rows: [{"date": "YYYY-MM-DD", "region": str, "product": str, "units": int,
    "price": float}]."""
    frame = make_sales()
    frame["date"] = frame["date"].dt.strftime("%Y-%m-%d")
    return frame.to_dict(orient="records")
