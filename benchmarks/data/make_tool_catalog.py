"""Writes tool_catalog.json (1,000+ tools of ten fictional SaaS APIs) and tool_queries.json (natural-language
requests, each with the one tool meant). Deterministic: ``python benchmarks/data/make_tool_catalog.py``.

The APIs overlap on purpose (customers live in billing, CRM, helpdesk and the shop; refunds in billing and the
shop; pipelines in CRM and CI; events in calendar and analytics). No query contains its tool's name, with or
without underscores: queries use other verbs ("set up", "get rid of") and, often, the resource's synonyms.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).parent

# service: (description of the product, {resource: (plural, synonyms, fields)})
SERVICES: dict[str, tuple[str, dict[str, tuple[str, list[str], list[str]]]]] = {
    "ledgerly": (
        "accounting and billing",
        {
            "invoice": ("invoices", ["bill", "billing statement"], ["customer_id", "amount_due", "due_date", "status"]),
            "payment": ("payments", ["charge", "transaction"], ["invoice_id", "amount", "method", "paid_at"]),
            "refund": ("refunds", ["reimbursement", "money back"], ["payment_id", "amount", "reason"]),
            "customer": ("customers", ["client", "account holder"], ["name", "email", "billing_address"]),
            "subscription": ("subscriptions", ["recurring plan", "membership"], ["customer_id", "plan", "renews_on"]),
            "credit_note": ("credit_notes", ["credit memo"], ["invoice_id", "amount", "memo"]),
            "tax_rate": ("tax_rates", ["VAT rate", "sales tax"], ["country", "percentage"]),
            "expense": ("expenses", ["spending", "cost"], ["category", "amount", "incurred_on"]),
            "vendor": ("vendors", ["supplier"], ["name", "payment_terms"]),
            "ledger_account": ("ledger_accounts", ["chart of accounts entry", "GL account"], ["code", "balance"]),
        },
    ),
    "helpdeskr": (
        "customer support helpdesk",
        {
            "ticket": ("tickets", ["support request", "case", "issue"], ["subject", "priority", "requester_id"]),
            "agent": ("agents", ["support rep", "staff responder"], ["name", "team", "availability"]),
            "macro": ("macros", ["canned response", "saved reply"], ["title", "body"]),
            "survey": ("surveys", ["satisfaction rating", "CSAT feedback"], ["ticket_id", "score", "comment"]),
            "sla_policy": ("sla_policies", ["response time target", "service level agreement"], ["hours", "tier"]),
            "customer": ("customers", ["end user", "requester"], ["name", "email", "organization"]),
            "article": ("articles", ["knowledge base page", "help center doc"], ["title", "section", "body"]),
            "tag": ("tags", ["label"], ["name", "color"]),
            "view": ("views", ["saved filter", "queue"], ["name", "conditions"]),
            "trigger": ("triggers", ["automation rule"], ["condition", "action"]),
        },
    ),
    "pipedrift": (
        "sales CRM",
        {
            "contact": ("contacts", ["person", "prospect"], ["name", "email", "phone", "owner_id"]),
            "deal": ("deals", ["opportunity", "sale in progress"], ["title", "value", "stage", "close_date"]),
            "company": ("companies", ["organization", "business account"], ["name", "industry", "size"]),
            "activity": ("activities", ["follow-up", "sales call or meeting"], ["type", "due_at", "deal_id"]),
            "note": ("notes", ["comment", "remark"], ["content", "deal_id"]),
            "pipeline": ("pipelines", ["sales funnel", "deal stages"], ["name", "stages"]),
            "lead": ("leads", ["inbound inquiry", "potential customer"], ["source", "score"]),
            "quote": ("quotes", ["price proposal", "estimate"], ["deal_id", "line_items", "total"]),
            "product": ("products", ["catalog item we sell"], ["name", "unit_price"]),
            "territory": ("territories", ["sales region"], ["name", "countries"]),
        },
    ),
    "shipyard": (
        "continuous integration and deployment",
        {
            "build": ("builds", ["CI run", "compile job"], ["commit_sha", "branch", "status", "duration"]),
            "deployment": ("deployments", ["release", "rollout"], ["environment", "version", "status"]),
            "environment": ("environments", ["stage like staging or production"], ["name", "url"]),
            "pipeline": ("pipelines", ["workflow", "CI configuration"], ["name", "steps", "trigger"]),
            "secret": ("secrets", ["credential", "API token variable"], ["name", "scope"]),
            "artifact": ("artifacts", ["build output", "binary package"], ["build_id", "path", "size"]),
            "runner": ("runners", ["build agent", "worker machine"], ["labels", "online"]),
            "repository": ("repositories", ["repo", "codebase"], ["name", "default_branch"]),
            "webhook": ("webhooks", ["HTTP callback"], ["url", "events"]),
            "test_report": ("test_reports", ["test results", "failing tests summary"], ["build_id", "failed"]),
        },
    ),
    "peoplebase": (
        "HR and people management",
        {
            "employee": ("employees", ["staff member", "worker", "team member"], ["name", "title", "manager_id"]),
            "time_off_request": ("time_off_requests", ["vacation", "leave", "holiday request"], ["start", "end"]),
            "payroll_run": ("payroll_runs", ["salary payment batch", "pay cycle"], ["period", "total"]),
            "department": ("departments", ["division", "org unit"], ["name", "head_id"]),
            "performance_review": ("performance_reviews", ["appraisal", "evaluation"], ["employee_id", "rating"]),
            "job_posting": ("job_postings", ["open position", "vacancy"], ["title", "location"]),
            "candidate": ("candidates", ["applicant", "job seeker"], ["name", "stage"]),
            "benefit_plan": ("benefit_plans", ["health insurance", "pension scheme"], ["name", "provider"]),
            "onboarding_task": ("onboarding_tasks", ["new hire checklist item"], ["employee_id", "due"]),
            "timesheet": ("timesheets", ["hours worked log"], ["employee_id", "week", "hours"]),
        },
    ),
    "chatterbox": (
        "team chat and messaging",
        {
            "channel": ("channels", ["chat room", "conversation space"], ["name", "private", "topic"]),
            "message": ("messages", ["chat post", "text sent"], ["channel_id", "text", "author_id"]),
            "user": ("users", ["chat member", "workspace member"], ["display_name", "status"]),
            "reaction": ("reactions", ["emoji response"], ["message_id", "emoji"]),
            "file": ("files", ["shared attachment", "upload"], ["name", "size", "channel_id"]),
            "reminder": ("reminders", ["nudge", "alert for later"], ["text", "remind_at"]),
            "thread": ("threads", ["reply chain"], ["parent_message_id", "replies"]),
            "user_group": ("user_groups", ["mention group", "handle for a team"], ["handle", "members"]),
            "bot": ("bots", ["chat integration", "app"], ["name", "scopes"]),
            "pin": ("pins", ["pinned item", "bookmark"], ["channel_id", "message_id"]),
        },
    ),
    "storely": (
        "online shop and e-commerce",
        {
            "product": ("products", ["item for sale", "merchandise", "SKU"], ["title", "price", "stock"]),
            "order": ("orders", ["purchase", "checkout"], ["customer_id", "total", "status"]),
            "cart": ("carts", ["shopping basket"], ["customer_id", "items"]),
            "inventory_level": ("inventory_levels", ["stock count", "warehouse quantity"], ["sku", "quantity"]),
            "discount_code": ("discount_codes", ["coupon", "promo code", "voucher"], ["code", "percent_off"]),
            "customer": ("customers", ["shopper", "buyer"], ["name", "email", "orders_count"]),
            "refund": ("refunds", ["return money", "chargeback for an order"], ["order_id", "amount"]),
            "shipment": ("shipments", ["delivery", "parcel", "fulfillment"], ["order_id", "carrier", "tracking"]),
            "collection": ("collections", ["product category", "storefront group"], ["title", "rules"]),
            "review": ("reviews", ["product rating", "customer feedback stars"], ["product_id", "stars", "text"]),
        },
    ),
    "calendo": (
        "calendar and scheduling",
        {
            "event": ("events", ["meeting", "appointment"], ["title", "start", "end", "location"]),
            "calendar": ("calendars", ["schedule", "agenda"], ["name", "timezone", "owner"]),
            "attendee": ("attendees", ["participant", "invitee", "guest"], ["event_id", "email", "response"]),
            "room": ("rooms", ["meeting room", "conference space"], ["name", "capacity", "building"]),
            "availability": ("availabilities", ["free/busy slot", "open time"], ["person", "from", "to"]),
            "booking_page": ("booking_pages", ["scheduling link", "appointment page"], ["slug", "duration"]),
            "recurrence_rule": ("recurrence_rules", ["repeating pattern", "weekly series"], ["rrule"]),
            "reminder_setting": ("reminder_settings", ["notification before a meeting"], ["minutes_before"]),
            "holiday": ("holidays", ["public holiday", "day off"], ["date", "country"]),
            "resource": ("resources", ["bookable equipment", "projector or car"], ["name", "type"]),
        },
    ),
    "metricsly": (
        "product analytics",
        {
            "dashboard": ("dashboards", ["board of charts", "overview screen"], ["title", "widgets"]),
            "report": ("reports", ["chart", "analysis"], ["title", "query", "schedule"]),
            "event": ("events", ["tracked action", "analytics hit"], ["name", "user_id", "properties"]),
            "funnel": ("funnels", ["conversion path", "step sequence"], ["steps", "conversion_rate"]),
            "cohort": ("cohorts", ["user group by signup week", "retention group"], ["definition", "size"]),
            "segment": ("segments", ["audience filter", "user subset"], ["name", "filters"]),
            "metric": ("metrics", ["KPI", "measure"], ["name", "formula"]),
            "alert": ("alerts", ["threshold warning", "anomaly notification"], ["metric_id", "threshold"]),
            "data_export": ("data_exports", ["raw data dump", "CSV extract"], ["format", "range"]),
            "annotation": ("annotations", ["chart marker", "timeline note"], ["date", "text"]),
        },
    ),
    "docvault": (
        "document storage and sharing",
        {
            "document": ("documents", ["doc", "file", "paper"], ["title", "folder_id", "owner"]),
            "folder": ("folders", ["directory"], ["name", "parent_id"]),
            "permission": ("permissions", ["sharing access", "who can view or edit"], ["document_id", "role"]),
            "version": ("versions", ["revision", "earlier copy"], ["document_id", "created_at"]),
            "comment": ("comments", ["remark in the margin", "feedback"], ["document_id", "text"]),
            "signature_request": ("signature_requests", ["e-signature", "sign-off"], ["document_id", "signers"]),
            "template": ("templates", ["boilerplate", "starting layout"], ["name", "category"]),
            "share_link": ("share_links", ["public link", "URL to share"], ["document_id", "expires"]),
            "trash_item": ("trash_items", ["deleted file in the bin", "recycle bin entry"], ["name", "deleted_at"]),
            "workspace": ("workspaces", ["team space", "drive"], ["name", "members"]),
        },
    ),
}

# action: (name pattern, description template, query templates; {r} resource words, {rs} plural words)
ACTIONS: dict[str, tuple[str, str, list[str]]] = {
    "list": (
        "list_{plural}",
        "List {rs} ({syn}), newest first; filter by status or creation date and page through them.",
        ["show me every {rs_q} we have in {svc}", "browse all {rs_q} in {svc}, most recent first"],
    ),
    "get": (
        "get_{res}",
        "Get one {r} ({syn}) by its ID with all its details.",
        ["look up the details of one {r_q} by its id in {svc}", "fetch a single {r_q} from {svc} by id"],
    ),
    "create": (
        "create_{res}",
        "Create a new {r} ({syn}). Returns the new record with its ID.",
        ["add a new {r_q} in {svc}", "set up a fresh {r_q} in {svc}"],
    ),
    "update": (
        "update_{res}",
        "Update (edit, change) fields of an existing {r} ({syn}).",
        ["change some fields of an existing {r_q} in {svc}", "edit a {r_q} that already exists in {svc}"],
    ),
    "delete": (
        "delete_{res}",
        "Delete a {r} ({syn}) permanently; this removes it and cannot be undone.",
        ["permanently remove a {r_q} from {svc}", "get rid of a {r_q} in {svc} for good"],
    ),
    "search": (
        "search_{plural}",
        "Search {rs} ({syn}) by keyword: full-text match on their text fields, ranked by relevance.",
        ["find {rs_q} in {svc} that mention a keyword", "keyword lookup across {rs_q} in {svc}"],
    ),
    "archive": (
        "archive_{res}",
        "Archive a {r} ({syn}): hide it from active lists without deleting it; it can be restored later.",
        ["hide a {r_q} in {svc} from the active list but keep it", "shelve an old {r_q} in {svc} without deleting"],
    ),
    "export": (
        "export_{plural}",
        "Export {rs} ({syn}) as a CSV file for a date range, for spreadsheets or backups.",
        ["download a spreadsheet of {rs_q} from {svc}", "dump {rs_q} from {svc} to csv for a date range"],
    ),
    "count": (
        "count_{plural}",
        "Count {rs} ({syn}) matching a filter; returns a number, not the records.",
        ["how many {rs_q} are there in {svc}", "give me the total number of {rs_q} in {svc}"],
    ),
    "history": (
        "get_{res}_history",
        "Get the change history (audit log) of a {r} ({syn}): who changed what, and when.",
        ["who changed this {r_q} in {svc} and when", "audit trail of edits to a {r_q} in {svc}"],
    ),
}

# How a request names the product: by its name or its domain (words of the product's description).
SERVICE_CUES = {
    "ledgerly": ["ledgerly", "accounting", "the billing system"],
    "helpdeskr": ["the helpdesk", "helpdeskr", "customer support"],
    "pipedrift": ["the CRM", "pipedrift", "sales CRM"],
    "shipyard": ["CI", "shipyard", "the deployment system"],
    "peoplebase": ["HR", "peoplebase", "people management"],
    "chatterbox": ["team chat", "chatterbox", "messaging"],
    "storely": ["the online shop", "storely", "e-commerce"],
    "calendo": ["the calendar", "scheduling", "calendo"],
    "metricsly": ["analytics", "product analytics", "metricsly"],
    "docvault": ["document storage", "docvault", "document sharing"],
}

# Tools only some resources have (verb, description); queries below are written by hand.
SPECIAL = {
    "ledgerly": [
        ("send_invoice", "Email an invoice (bill) to the customer as a PDF, with a payment link."),
        ("void_invoice", "Void (cancel) an issued invoice so it no longer needs to be paid."),
        ("refund_payment", "Refund (reimburse) all or part of a payment back to the original card or account."),
        ("mark_invoice_paid", "Record that an invoice was paid outside the system, e.g. by bank transfer."),
        ("get_aging_report", "Accounts receivable aging: unpaid invoices grouped by how many days overdue."),
    ],
    "helpdeskr": [
        ("escalate_ticket", "Escalate a ticket (support case) to a higher tier or a manager, raising its priority."),
        ("merge_tickets", "Merge duplicate tickets (support requests) into one, keeping all replies."),
        ("assign_ticket", "Assign a ticket (support case) to an agent or a group."),
        ("reply_to_ticket", "Post a public reply or internal note on a ticket (support request)."),
        ("apply_macro", "Apply a macro (canned response) to a ticket."),
    ],
    "pipedrift": [
        ("merge_contacts", "Merge duplicate contacts (people) into one record, combining their deals and notes."),
        ("move_deal_stage", "Move a deal (opportunity) to another stage of its pipeline, e.g. to negotiation."),
        ("mark_deal_won", "Mark a deal (opportunity) as won and record the final value."),
        ("mark_deal_lost", "Mark a deal (opportunity) as lost, with the reason it was lost."),
        ("convert_lead", "Convert a lead (inbound inquiry) into a contact, a company and a deal."),
    ],
    "shipyard": [
        ("rollback_deployment", "Roll back a deployment (release) to the previous version of the environment."),
        ("retry_build", "Retry (rerun) a failed build (CI run) with the same commit."),
        ("cancel_build", "Cancel (abort) a running build (CI run)."),
        ("promote_deployment", "Promote a deployment (release) from staging to production."),
        ("get_build_logs", "Get the console output (log lines) of a build (CI run)."),
    ],
    "peoplebase": [
        ("approve_time_off_request", "Approve a vacation or leave request (time off)."),
        ("terminate_employee", "Offboard an employee (staff member): end employment on a date and revoke access."),
        ("run_payroll", "Run payroll: calculate and pay salaries for a pay period."),
        ("get_org_chart", "Get the organisation chart: who reports to whom."),
        ("get_leave_balance", "Remaining vacation and sick days (leave balance) of an employee."),
    ],
    "chatterbox": [
        ("post_message", "Post (send) a message to a channel or a person."),
        ("invite_user_to_channel", "Invite (add) a user to a channel (chat room)."),
        ("set_channel_topic", "Set the topic (headline) shown at the top of a channel."),
        ("schedule_message", "Schedule a message to be posted later at a given time."),
        ("set_user_status", "Set a user's status text and emoji, e.g. 'in a meeting'."),
    ],
    "storely": [
        ("fulfill_order", "Fulfill an order (purchase): mark items shipped and create the shipment with tracking."),
        ("cancel_order", "Cancel an order (purchase) and optionally restock the items."),
        ("adjust_inventory", "Adjust stock (inventory) of a SKU up or down, e.g. after a stock take."),
        ("apply_discount_code", "Apply a coupon (discount code) to a cart (shopping basket)."),
        ("get_best_sellers", "Best-selling products over a period, by units sold and revenue."),
    ],
    "calendo": [
        ("find_free_slot", "Find a time when all the given people are free (free/busy) for a meeting of a length."),
        ("book_room", "Book (reserve) a meeting room for a time."),
        ("reschedule_event", "Move an event (meeting) to another time and notify attendees."),
        ("respond_to_invite", "Accept, decline or tentatively answer a meeting invitation."),
        ("cancel_event", "Cancel an event (meeting) and tell the invitees."),
    ],
    "metricsly": [
        ("run_query", "Run an ad-hoc analytics query (SQL-like) over tracked events and return rows."),
        ("get_retention", "Retention curve of a cohort: share of users still active after N weeks."),
        ("get_funnel_conversion", "Conversion rate between the steps of a funnel over a date range."),
        ("get_active_users", "Daily, weekly or monthly active users (DAU/WAU/MAU) over a period."),
        ("share_dashboard", "Share a dashboard with people or make it public with a link."),
    ],
    "docvault": [
        ("upload_document", "Upload a new document (file) into a folder."),
        ("share_document", "Share a document with people, as viewer, commenter or editor."),
        ("restore_version", "Restore an earlier version (revision) of a document."),
        ("move_document", "Move a document to another folder."),
        ("empty_trash", "Permanently delete everything in the trash (recycle bin)."),
    ],
}

SPECIAL_QUERIES = {
    "send_invoice": "email the bill for order 55 to the client as a pdf",
    "void_invoice": "cancel an issued bill in accounting so nobody has to pay it",
    "refund_payment": "give a customer their money back for a card charge in the billing system",
    "mark_invoice_paid": "record that the client settled their bill by bank transfer",
    "get_aging_report": "which unpaid bills are 30, 60 or 90 days overdue",
    "escalate_ticket": "bump this support case up to a manager with higher priority",
    "merge_tickets": "combine two duplicate support requests into one",
    "assign_ticket": "hand this support case to the billing team's agent",
    "reply_to_ticket": "answer the requester on their support case",
    "apply_macro": "use the saved reply on this support case",
    "merge_contacts": "we have the same person twice in the CRM, combine them",
    "move_deal_stage": "move the Acme opportunity to negotiation",
    "mark_deal_won": "we closed the Acme opportunity, record it as a win",
    "mark_deal_lost": "the prospect chose a competitor, close the opportunity as lost",
    "convert_lead": "turn this inbound inquiry into a contact, company and opportunity",
    "rollback_deployment": "production is broken after the release, go back to the previous version",
    "retry_build": "rerun the failed CI run for that commit",
    "cancel_build": "abort the CI run that is still going",
    "promote_deployment": "push the staging release to production",
    "get_build_logs": "show the console output of the CI run that failed",
    "approve_time_off_request": "say yes to Maria's vacation request",
    "terminate_employee": "offboard a staff member leaving at the end of the month",
    "run_payroll": "pay everyone's salaries for this month",
    "get_org_chart": "who reports to whom in the company",
    "get_leave_balance": "how many vacation days does Tom have left",
    "post_message": "send a note to the #general chat room",
    "invite_user_to_channel": "add Priya to the #design chat room",
    "set_channel_topic": "change the headline of the #ops chat room",
    "schedule_message": "post this announcement in team chat tomorrow at 9am",
    "set_user_status": "show 'in a meeting' next to my name in chat",
    "fulfill_order": "ship the purchase and attach the tracking number",
    "cancel_order": "a shopper wants to call off their purchase and restock the items",
    "adjust_inventory": "we counted 12 fewer units of this SKU in the warehouse, fix the stock",
    "apply_discount_code": "put the SUMMER10 coupon on this shopping basket",
    "get_best_sellers": "which products sold the most units last quarter",
    "find_free_slot": "when are Ana, Ben and Chloe all free for 30 minutes this week",
    "book_room": "reserve a conference space for Thursday 2pm",
    "reschedule_event": "move tomorrow's meeting to Friday and tell everyone",
    "respond_to_invite": "decline the invitation to the offsite",
    "cancel_event": "call off the team lunch and notify the invitees",
    "run_query": "run an ad-hoc SQL query over the tracked analytics data",
    "get_retention": "what share of users who signed up in March are still active after 8 weeks",
    "get_funnel_conversion": "what percentage of visitors go from signup to checkout",
    "get_active_users": "how many monthly active users did we have in October",
    "share_dashboard": "give the marketing team access to the revenue board of charts",
    "upload_document": "put this PDF into the contracts folder of the drive",
    "share_document": "let Sam edit the budget doc",
    "restore_version": "bring back yesterday's revision of the proposal doc",
    "move_document": "put the contract doc in the legal directory instead",
    "empty_trash": "clear the recycle bin of the docs drive for good",
}


# A held-out set, written before any tuning on the set above and never used to tune: other phrasings of every
# action, other hand-written requests for the special tools, another seed.
HELDOUT_TEMPLATES: dict[str, list[str]] = {
    "list": ["what {rs_q} are in {svc} right now", "give me an overview of the {rs_q} in {svc}"],
    "get": ["pull up {r_q} number 4711 in {svc}", "open the record of a particular {r_q} in {svc}"],
    "create": ["register another {r_q} in {svc}", "I need to enter a brand-new {r_q} into {svc}"],
    "update": ["correct the details on a {r_q} in {svc}", "modify one {r_q} stored in {svc}"],
    "delete": ["erase a {r_q} from {svc} completely", "wipe out a {r_q} in {svc}, no undo"],
    "search": ["which {rs_q} in {svc} contain the word 'urgent'", "look for {rs_q} in {svc} matching some text"],
    "archive": ["put a {r_q} of {svc} out of sight but keep it around", "retire an inactive {r_q} in {svc}"],
    "export": ["save the {rs_q} of {svc} to a csv file", "back up all {rs_q} from {svc} as a file"],
    "count": ["what is the number of {rs_q} in {svc}", "tally the {rs_q} that {svc} holds"],
    "history": ["who edited this {r_q} in {svc} last", "see past changes made to a {r_q} in {svc}"],
}

HELDOUT_SPECIAL_QUERIES = {
    "send_invoice": "mail the customer a pdf of what they owe us with a link to pay",
    "void_invoice": "the bill we issued was a mistake, nullify it",
    "refund_payment": "reimburse the card charge from last week",
    "mark_invoice_paid": "the client paid the bill by wire, note it as settled",
    "get_aging_report": "overdue receivables bucketed by days late",
    "escalate_ticket": "this support case needs a manager, raise its priority",
    "merge_tickets": "two support requests are the same problem, fold them together",
    "assign_ticket": "give this support case to Dana in tier 2",
    "reply_to_ticket": "write back to the customer on their support case",
    "apply_macro": "run the canned response on this case",
    "merge_contacts": "dedupe these two people in the CRM",
    "move_deal_stage": "advance the opportunity to the proposal step of its funnel",
    "mark_deal_won": "the customer signed, record the opportunity as a win",
    "mark_deal_lost": "we lost the opportunity to a competitor, note why",
    "convert_lead": "promote the inbound inquiry to a real contact with a company and opportunity",
    "rollback_deployment": "the new release broke prod, revert to the last good version",
    "retry_build": "run the failed CI job again on the same commit",
    "cancel_build": "stop the CI run that is in progress",
    "promote_deployment": "move the release that passed staging on to production",
    "get_build_logs": "print the log lines of that CI run",
    "approve_time_off_request": "grant Ahmed's leave request for next week",
    "terminate_employee": "end the employment of a staff member and revoke their access",
    "run_payroll": "calculate and pay the salaries for this pay period",
    "get_org_chart": "show the reporting lines of the whole organisation",
    "get_leave_balance": "how much vacation does Lisa still have",
    "post_message": "write 'deploy done' in the #ops chat room",
    "invite_user_to_channel": "bring Omar into the #sales chat room",
    "set_channel_topic": "put 'release week' as the headline of the #eng chat room",
    "schedule_message": "queue a chat post to go out on Monday at 8",
    "set_user_status": "mark me as 'out sick' in team chat",
    "fulfill_order": "mark the purchase as shipped with its tracking code",
    "cancel_order": "call off order 1001 and put the items back in stock",
    "adjust_inventory": "correct the stock of a SKU after the warehouse count",
    "apply_discount_code": "use the voucher WINTER5 on the shopper's basket",
    "get_best_sellers": "top products by units sold this month",
    "find_free_slot": "a time when the whole team is available for an hour",
    "book_room": "reserve the big meeting room for Monday at 10",
    "reschedule_event": "push the standup meeting to 11 and let the attendees know",
    "respond_to_invite": "accept the meeting invitation from Joe",
    "cancel_event": "scrap Friday's meeting and notify everyone invited",
    "run_query": "execute a custom SQL-like query over the events we track",
    "get_retention": "how many users from the January signup cohort still use the product",
    "get_funnel_conversion": "conversion rate from the pricing page to paid, step by step",
    "get_active_users": "daily active users for the last 30 days",
    "share_dashboard": "make the growth board of charts public with a link",
    "upload_document": "add this scanned file to the invoices folder in document storage",
    "share_document": "give Kim comment access to the plan doc",
    "restore_version": "revert the handbook doc to an earlier revision",
    "move_document": "relocate the memo doc into the archive directory",
    "empty_trash": "purge the deleted files in the recycle bin",
}


def words(name: str) -> str:
    return name.replace("_", " ")


def tool_entry(service: str, name: str, description: str, fields: list[str], returns: list[str]) -> dict:
    properties = {f: {"type": "string", "description": f"The {words(f)}."} for f in fields}
    return {
        "server": service,
        "name": name,
        "description": description,
        "input_schema": {"type": "object", "properties": properties, "required": fields[:1]},
        "output_schema": {"type": "object", "properties": {f: {"type": "string"} for f in returns}},
    }


def build(heldout: bool = False) -> tuple[list[dict], list[dict]]:
    """The catalog and its tuning queries, or (``heldout``) the same catalog and the held-out queries."""
    rng = random.Random(1414 if heldout else 14)
    special_queries = HELDOUT_SPECIAL_QUERIES if heldout else SPECIAL_QUERIES
    tools: list[dict] = []
    queries: list[dict] = []
    for service, (product, resources) in SERVICES.items():
        for res, (plural, synonyms, fields) in resources.items():
            syn = ", ".join(synonyms)
            for action, (pattern, template, query_templates) in ACTIONS.items():
                query_templates = HELDOUT_TEMPLATES[action] if heldout else query_templates
                name = pattern.format(res=res, plural=plural)
                description = template.format(r=words(res), rs=words(plural), syn=syn) + f" {product.capitalize()}."
                args = ["id", *fields] if action in ("get", "update", "delete", "archive", "history") else fields
                if action in ("list", "search", "export", "count"):
                    args = ["query" if action == "search" else "status", "created_after", "created_before"]
                tools.append(tool_entry(service, name, description, args, ["id", *fields]))
                # one query for every tool of a resource's first half of actions, alternating the templates
                if rng.random() < 0.22:
                    r_q = rng.choice([words(res), *synonyms]).lower()
                    rs_q = words(plural) if r_q == words(res) else r_q + "s"
                    text = rng.choice(query_templates).format(r_q=r_q, rs_q=rs_q, svc=rng.choice(SERVICE_CUES[service]))
                    queries.append({"query": text, "tool": f"{service}.{name}"})
        for name, description in SPECIAL[service]:
            tools.append(tool_entry(service, name, description + f" {product.capitalize()}.", ["id"], ["id", "status"]))
            queries.append({"query": special_queries[name], "tool": f"{service}.{name}"})
    for q in queries:
        name = q["tool"].split(".", 1)[1]
        assert name not in q["query"] and words(name) not in q["query"].lower(), q
    return tools, queries


if __name__ == "__main__":
    tools, queries = build()
    (HERE / "tool_catalog.json").write_text(json.dumps(tools, indent=1) + "\n")
    (HERE / "tool_queries.json").write_text(json.dumps(queries, indent=1) + "\n")
    _, heldout = build(heldout=True)
    (HERE / "tool_queries_heldout.json").write_text(json.dumps(heldout, indent=1) + "\n")
    print(f"{len(tools)} tools, {len(queries)} tuning queries, {len(heldout)} held-out queries")
