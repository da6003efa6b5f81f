"""The evaluation's tasks: a question, the tools it may use, and an exact checker of the final answer.

Ground truth is computed here from the tables in ``tools.py``, independently of any model. A numeric answer
counts when the answer text contains the expected number (to 0.01, or 0.01% of large values); names count
when every expected name appears (and, for "which one" questions, no wrong candidate does).
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from benchmarks.eval import tools as t

Checker = Callable[[str], bool]


@dataclass(frozen=True)
class Task:
    name: str
    category: str  # aggregation, join, error, data, chart, lookup
    question: str
    tools: tuple[str, ...]  # function names in benchmarks.eval.tools
    check: Checker
    expected: str  # the right answer, for the report
    data: bool = False  # hand the sales DataFrame over with --data sales
    chart: bool = False  # a figure must be shown (codeagent only: direct tool calling cannot draw)
    extra: dict[str, Any] = field(default_factory=dict)


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def numbers_in(text: str) -> list[float]:
    """Every number written in ``text`` ("1,742.75", "$1742.75", "1742.750" → 1742.75)."""
    cleaned = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)
    return [float(m) for m in _NUMBER.findall(cleaned)]


def has_number(expected: float) -> Checker:
    tolerance = max(0.01, abs(expected) * 1e-4)
    return lambda answer: any(abs(x - expected) <= tolerance for x in numbers_in(answer))


def names(*right: str, wrong: tuple[str, ...] = ()) -> Checker:
    def check(answer: str) -> bool:
        words = answer.lower()
        found = all(re.search(rf"\b{re.escape(r.lower())}\b", words) for r in right)
        return found and not any(re.search(rf"\b{re.escape(w.lower())}\b", words) for w in wrong)

    return check


def both(*checks: Checker) -> Checker:
    return lambda answer: all(c(answer) for c in checks)


def _money(x: float) -> str:
    return f"{x:.2f}"


# -- ground truth -------------------------------------------------------------------------------------------


def _value(account: str) -> float:
    return sum(p["shares"] * t.PRICES[p["ticker"]] for p in t.HOLDINGS[account])


def _positions(account: str) -> dict[str, float]:
    return {p["ticker"]: p["shares"] * t.PRICES[p["ticker"]] for p in t.HOLDINGS[account]}


def _temps(city: str) -> list[float]:
    return [t.get_temperature(city, d) for d in range(1, 8)]


def _spent(customer: str) -> float:
    return sum(o["qty"] * t.PRODUCTS[o["product_id"]]["price"] for o in t.ORDERS[customer])


def _revenue_by_category() -> dict[str, float]:
    out: dict[str, float] = {}
    for orders in t.ORDERS.values():
        for o in orders:
            p = t.PRODUCTS[o["product_id"]]
            out[p["category"]] = out.get(p["category"], 0.0) + o["qty"] * p["price"]
    return out


SALES = t.make_sales()
SALES_REVENUE = SALES["units"] * SALES["price"]
BY_REGION = SALES.assign(revenue=SALES_REVENUE).groupby("region")["revenue"].sum()
BY_MONTH = SALES.assign(revenue=SALES_REVENUE, month=SALES["date"].dt.month).groupby("month")["revenue"].sum()
MONTH_NAMES = ["January", "February", "March", "April", "May", "June"]
CITIES = ["Paris", "Rome", "Oslo", "Madrid", "Berlin"]
LAX_DATES = ["2026-12-03", "2026-12-04", "2026-12-05"]
IN_STOCK = sum(t.STOCK.values())
DISCONTINUED = [s for s in t.SKUS if s not in t.STOCK]
ENG = [t.EMPLOYEES[e] for e in t.DEPARTMENTS["eng"]]
SALES_STAFF = [t.EMPLOYEES[e] for e in t.DEPARTMENTS["sales"]]
ALL_STAFF = ENG + SALES_STAFF
TOP_SPENDER = max(t.ORDERS, key=_spent)
TOP_CATEGORY = max(_revenue_by_category().items(), key=lambda kv: kv[1])[0]
TRIP_LAX = min(f[1] for f in t.FLIGHTS[("NYC", "LAX", "2026-12-03")]) + t.HOTEL_PER_NIGHT["LAX"] * 3
TRIP_MIA = min(f[1] for f in t.FLIGHTS[("NYC", "MIA", "2026-12-03")]) + t.HOTEL_PER_NIGHT["MIA"] * 3
CHEAP_FLIGHTS = sum(1 for d in LAX_DATES for _, p in t.FLIGHTS.get(("NYC", "LAX", d), []) if p < 300)
HOTTEST_DAY3 = max(CITIES, key=lambda c: t.get_temperature(c, 3))
COLDEST_MEAN = min(CITIES, key=lambda c: statistics.mean(_temps(c)))
BIGGEST_A17 = max(_positions("A-17").items(), key=lambda kv: kv[1])[0]
EUR_B02 = _value("B-02") * t.FX_PER_USD["EUR"]
AMOUNTS = {"EUR": 100.0, "GBP": 250.0, "SEK": 80.0, "JPY": 1000.0}  # amounts in USD to convert
CONVERTIBLE = {c: a * t.FX_PER_USD[c] for c, a in AMOUNTS.items() if c in t.FX_PER_USD}
TOP_REGION = str(BY_REGION.idxmax())
TOP_MONTH = MONTH_NAMES[int(BY_MONTH.idxmax()) - 1]
WIDGET_UNITS = float(SALES.loc[SALES["product"] == "widget", "units"].mean())
LONGEST_SALES = min(SALES_STAFF, key=lambda e: e["start_year"])["name"]
OTHER_SALES = tuple(e["name"] for e in SALES_STAFF if e["name"] != LONGEST_SALES)
BOOK_ORDERS = sum(1 for os in t.ORDERS.values() for o in os if t.PRODUCTS[o["product_id"]]["category"] == "books")
HIGHEST_PAID = max(ALL_STAFF, key=lambda e: e["salary"])["name"]

MARKET = ("get_price", "get_holdings", "get_fx_rate")
WEATHER = ("get_temperature",)
SHOP = ("list_customers", "get_orders", "get_product")
TRAVEL = ("find_flights", "get_hotel_price")
STAFF = ("get_department", "get_employee")

TASKS: list[Task] = [
    # -- markets
    Task(
        "shares_total",
        "aggregation",
        "What is the total value of 3 shares of AAPL plus 5 shares of MSFT?",
        MARKET,
        has_number(3 * t.PRICES["AAPL"] + 5 * t.PRICES["MSFT"]),
        _money(3 * t.PRICES["AAPL"] + 5 * t.PRICES["MSFT"]),
    ),
    Task(
        "account_value",
        "join",
        "What is the total market value in USD of all positions in account A-17?",
        MARKET,
        has_number(_value("A-17")),
        _money(_value("A-17")),
    ),
    Task(
        "largest_position",
        "join",
        "Which ticker is the largest position by market value in account A-17?",
        MARKET,
        names(BIGGEST_A17, wrong=tuple(k for k in _positions("A-17") if k != BIGGEST_A17)),
        BIGGEST_A17,
    ),
    Task(
        "mean_price",
        "aggregation",
        "What is the average share price of AAPL, MSFT, GOOG, AMZN, NVDA and TSLA, rounded to 2 decimals?",
        MARKET,
        has_number(round(statistics.mean(t.PRICES.values()), 2)),
        _money(statistics.mean(t.PRICES.values())),
    ),
    Task(
        "account_value_eur",
        "join",
        "What is account B-02 worth in EUR, rounded to 2 decimals?",
        MARKET,
        has_number(round(EUR_B02, 2)),
        _money(EUR_B02),
    ),
    Task(
        "richest_account",
        "join",
        "Which of the accounts A-17, B-02 and C-33 has the highest total market value?",
        MARKET,
        names(max(t.HOLDINGS, key=_value), wrong=tuple(a for a in t.HOLDINGS if a != max(t.HOLDINGS, key=_value))),
        max(t.HOLDINGS, key=_value),
    ),
    # -- weather
    Task(
        "paris_mean",
        "aggregation",
        "What was the mean temperature in Paris over days 1 to 7, rounded to 2 decimals?",
        WEATHER,
        has_number(round(statistics.mean(_temps("Paris")), 2)),
        _money(statistics.mean(_temps("Paris"))),
    ),
    Task(
        "hottest_day3",
        "aggregation",
        f"Which of these cities was the hottest on day 3: {', '.join(CITIES)}?",
        WEATHER,
        names(HOTTEST_DAY3, wrong=tuple(c for c in CITIES if c != HOTTEST_DAY3)),
        HOTTEST_DAY3,
    ),
    Task(
        "rome_warm_days",
        "aggregation",
        "On how many of days 1 to 7 was Rome warmer than 21 °C?",
        WEATHER,
        has_number(sum(1 for x in _temps("Rome") if x > 21)),
        str(sum(1 for x in _temps("Rome") if x > 21)),
    ),
    Task(
        "coldest_week",
        "aggregation",
        f"Which city had the lowest mean temperature over days 1 to 7: {', '.join(CITIES)}?",
        WEATHER,
        names(COLDEST_MEAN, wrong=tuple(c for c in CITIES if c != COLDEST_MEAN)),
        COLDEST_MEAN,
    ),
    Task(
        "oslo_range",
        "aggregation",
        "What is the difference between the highest and lowest temperature in Oslo over days 1 to 7?",
        WEATHER,
        has_number(round(max(_temps("Oslo")) - min(_temps("Oslo")), 2)),
        _money(max(_temps("Oslo")) - min(_temps("Oslo"))),
    ),
    # -- shop (joins)
    Task(
        "customer_spend",
        "join",
        "How much has customer C3 spent in total (quantity × product price over all orders)?",
        SHOP,
        has_number(_spent("C3")),
        _money(_spent("C3")),
    ),
    Task(
        "top_customer",
        "join",
        "Which customer (give the name) has spent the most money?",
        SHOP,
        names(
            next(c["name"] for c in t.CUSTOMERS if c["id"] == TOP_SPENDER),
            wrong=tuple(c["name"] for c in t.CUSTOMERS if c["id"] != TOP_SPENDER),
        ),
        next(c["name"] for c in t.CUSTOMERS if c["id"] == TOP_SPENDER),
    ),
    Task(
        "book_orders",
        "join",
        "How many orders, over all customers, are for products in the category 'books'?",
        SHOP,
        has_number(BOOK_ORDERS),
        str(BOOK_ORDERS),
    ),
    Task(
        "top_category",
        "join",
        "Which product category brought in the most revenue over all orders?",
        SHOP,
        names(TOP_CATEGORY, wrong=tuple(c for c in _revenue_by_category() if c != TOP_CATEGORY)),
        TOP_CATEGORY,
    ),
    Task(
        "shop_revenue",
        "join",
        "What is the total revenue over all orders of all customers?",
        SHOP,
        has_number(sum(_spent(c) for c in t.ORDERS)),
        _money(sum(_spent(c) for c in t.ORDERS)),
    ),
    # -- a tool that raises
    Task(
        "stock_total",
        "error",
        f"How many units are in stock in total over {', '.join(t.SKUS)}? get_stock raises for discontinued SKUs; "
        "count those as 0.",
        ("get_stock",),
        has_number(IN_STOCK),
        str(IN_STOCK),
    ),
    Task(
        "discontinued",
        "error",
        f"Which of {', '.join(t.SKUS)} are discontinued? (get_stock raises for those.)",
        ("get_stock",),
        names(*DISCONTINUED, wrong=tuple(s for s in t.SKUS if s not in DISCONTINUED)),
        ", ".join(DISCONTINUED),
    ),
    Task(
        "fx_unsupported",
        "error",
        f"Convert these USD amounts: {', '.join(f'{a:g} USD to {c}' for c, a in AMOUNTS.items())}. "
        "Which currency is not supported, and what is the sum of the converted amounts of the supported ones?",
        MARKET,
        both(names("SEK"), has_number(round(sum(CONVERTIBLE.values()), 2))),
        f"SEK; {_money(sum(CONVERTIBLE.values()))}",
    ),
    Task(
        "bad_day",
        "error",
        "What is the mean temperature in Madrid over days 0 to 7, skipping any day the tool rejects? "
        "Round to 2 decimals.",
        WEATHER,
        has_number(round(statistics.mean(_temps("Madrid")), 2)),
        _money(statistics.mean(_temps("Madrid"))),
    ),
    # -- --data: a DataFrame from the notebook
    Task(
        "sales_revenue",
        "data",
        "In the DataFrame `sales`, what is the total revenue (units × price)?",
        (),
        has_number(round(float(SALES_REVENUE.sum()), 2)),
        _money(float(SALES_REVENUE.sum())),
        data=True,
    ),
    Task(
        "sales_top_region",
        "data",
        "In the DataFrame `sales`, which region has the highest revenue (units × price)?",
        (),
        names(TOP_REGION, wrong=tuple(r for r in BY_REGION.index if r != TOP_REGION)),
        TOP_REGION,
        data=True,
    ),
    Task(
        "sales_widget_units",
        "data",
        "In the DataFrame `sales`, what is the average number of units per row for the product 'widget', "
        "rounded to 2 decimals?",
        (),
        has_number(round(WIDGET_UNITS, 2)),
        _money(WIDGET_UNITS),
        data=True,
    ),
    Task(
        "sales_big_rows",
        "data",
        "In the DataFrame `sales`, how many rows have more than 10 units?",
        (),
        has_number(int((SALES["units"] > 10).sum())),
        str(int((SALES["units"] > 10).sum())),
        data=True,
    ),
    Task(
        "sales_top_month",
        "data",
        "In the DataFrame `sales`, which month (by the `date` column) had the highest revenue? Give the month's name.",
        (),
        names(TOP_MONTH, wrong=tuple(m for m in MONTH_NAMES if m != TOP_MONTH)),
        TOP_MONTH,
        data=True,
    ),
    Task(
        "sales_median_units",
        "data",
        "In the DataFrame `sales`, what is the median of the `units` column?",
        (),
        has_number(float(SALES["units"].median())),
        f"{float(SALES['units'].median()):g}",
        data=True,
    ),
    # -- charts
    Task(
        "chart_regions",
        "chart",
        "Draw a bar chart of revenue (units × price) by region from the DataFrame `sales` with matplotlib, and "
        "tell me which region is highest.",
        (),
        names(TOP_REGION, wrong=tuple(r for r in BY_REGION.index if r != TOP_REGION)),
        f"{TOP_REGION} (and a figure)",
        data=True,
        chart=True,
    ),
    Task(
        "chart_paris",
        "chart",
        "Plot the temperature in Paris over days 1 to 7 as a line chart with matplotlib, and tell me the highest "
        "temperature.",
        WEATHER,
        has_number(max(_temps("Paris"))),
        f"{max(_temps('Paris')):g} (and a figure)",
        chart=True,
    ),
    # -- travel
    Task(
        "cheapest_flight",
        "aggregation",
        "What is the price of the cheapest flight from NYC to LAX on 2026-12-03?",
        TRAVEL,
        has_number(min(f[1] for f in t.FLIGHTS[("NYC", "LAX", "2026-12-03")])),
        str(min(f[1] for f in t.FLIGHTS[("NYC", "LAX", "2026-12-03")])),
    ),
    Task(
        "cheaper_trip",
        "join",
        "For a trip from NYC on 2026-12-03 with 3 hotel nights, which destination is cheaper in total "
        "(cheapest flight + hotel): LAX or MIA? Give the total too.",
        TRAVEL,
        both(
            names("LAX" if TRIP_LAX < TRIP_MIA else "MIA", wrong=("MIA" if TRIP_LAX < TRIP_MIA else "LAX",)),
            has_number(min(TRIP_LAX, TRIP_MIA)),
        ),
        f"{'LAX' if TRIP_LAX < TRIP_MIA else 'MIA'}; {min(TRIP_LAX, TRIP_MIA):g}",
    ),
    Task(
        "cheap_flights",
        "aggregation",
        f"How many flights from NYC to LAX cost less than 300 USD, over the dates {', '.join(LAX_DATES)}?",
        TRAVEL,
        has_number(CHEAP_FLIGHTS),
        str(CHEAP_FLIGHTS),
    ),
    # -- staff
    Task(
        "eng_payroll",
        "join",
        "What is the total salary of everyone in the 'eng' department?",
        STAFF,
        has_number(sum(e["salary"] for e in ENG)),
        str(sum(e["salary"] for e in ENG)),
    ),
    Task(
        "longest_serving",
        "join",
        "Who in the 'sales' department has been there longest (earliest start year)?",
        STAFF,
        names(LONGEST_SALES, wrong=OTHER_SALES),
        LONGEST_SALES,
    ),
    Task(
        "highest_paid",
        "join",
        "Who is the highest-paid employee across the 'eng' and 'sales' departments?",
        STAFF,
        names(HIGHEST_PAID),
        HIGHEST_PAID,
    ),
    # -- calculator and units
    Task(
        "calculator",
        "lookup",
        "Using the tools, compute 12.5 × 4 + 7.25.",
        ("multiply", "add"),
        has_number(12.5 * 4 + 7.25),
        f"{12.5 * 4 + 7.25:g}",
    ),
    Task(
        "marathon_km",
        "lookup",
        "How many kilometres is 26.2 miles, rounded to 2 decimals?",
        ("convert_units",),
        has_number(round(26.2 * 1.609344, 2)),
        _money(26.2 * 1.609344),
    ),
]

TASKS_BY_NAME = {task.name: task for task in TASKS}
