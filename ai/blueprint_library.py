"""The copy of the built-in sequence blueprints: six proven shapes of lifecycle
sequence, each a handful of emails ("beats") in the order and at the spacing that
marketers commonly use, plus a shared pool of value emails that lengthen any of
them.

Copy is plain English with ``str.format`` fields, filled by ``ai.blueprints`` with
values already made inert: ``{first}`` (the reader's first name, with a fallback),
``{product}``, ``{sender}``, ``{audience}``, ``{for_company}`` (" at <company>"
when the account has such an attribute, else ""). No copy uses a phrase the
pre-flight counts against an email ("click here", "limited time", "buy now"...):
a blueprint must pass the pre-flight as it stands.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Beat:
    """One email of a blueprint. ``wait``: the delay before it, after the previous
    email (or after enrolling, for the first): ``{"hours": 1}``, ``{"days": 2}``; None
    sends at once."""

    subject: str
    preheader: str
    paragraphs: tuple[str, ...]
    cta: str | None
    wait: dict[str, float] | None


@dataclass(frozen=True)
class Blueprint:
    """``keep``: the beats' indexes, most important first, for a shorter sequence;
    ``exit_event``: the event that ends an enrollment and counts as its conversion."""

    key: str
    title: str
    what: str
    keywords: tuple[str, ...]
    beats: tuple[Beat, ...]
    keep: tuple[int, ...]
    exit_event: str | None = None


WELCOME = Blueprint(
    key="welcome", title="Welcome",
    what="Greets a new subscriber, sets expectations, tells the story behind the product and invites a first step.",
    keywords=("welcome", "new subscriber", "new subscribers", "newsletter", "signup", "sign up", "signed up",
              "subscribe", "subscriber", "introduce", "introduction", "nurture", "lead", "leads"),
    beats=(
        Beat("Welcome to {product}", "Here is what to expect from us",
             ("Thanks for joining us. We are glad you are here.",
              "Over the next few days we will share how {product} can help you, a few ideas from other readers, "
              "and nothing you did not sign up for.",
              "If you have a question, just reply to this email: a person reads every answer."),
             "Take a look around", None),
        Beat("The story behind {product}", "Why we started, in two minutes",
             ("We built {product} for {audience}, because we wanted something simpler for ourselves.",
              "Everything we make starts from one question: does this save you time or make your day better?"),
             "Read our story", {"days": 2}),
        Beat("Three ways to get more from {product}", "Small habits that make a big difference",
             ("Most people start with one feature and stop there. Here are three others worth a minute of your "
              "time.",
              "Pick one, try it this week, and tell us how it went."),
             "See the ideas", {"days": 3}),
        Beat("What other readers say about {product}", "Real words from real people",
             ("We asked a few readers what changed for them since they started with {product}.",
              "Their answers were more specific than we expected, and they might help you decide where to "
              "start."),
             "Read their stories", {"days": 3}),
        Beat("Ready for your first step?", "One small thing to try today",
             ("You have had a few days to look around. The best next step is a small one.",
              "Try {product} once this week. If it is not for you, that is fine: you can change what you hear "
              "from us at any time."),
             "Start with {product}", {"days": 4}),
    ),
    keep=(0, 4, 1, 2, 3),
)

ONBOARDING = Blueprint(
    key="onboarding", title="Onboarding",
    what="Takes a new user from sign-up to the first success with the product, one step per email.",
    keywords=("onboard", "onboarding", "activation", "activate", "setup", "set up", "trial", "getting started",
              "get started", "adoption", "adopt", "feature", "features", "new user", "new users", "users",
              "first steps", "account"),
    beats=(
        Beat("Your {product} account is ready", "The first step takes two minutes",
             ("Your account{for_company} is ready. Let us get you to your first result quickly.",
              "Start with the one thing that matters most: set up your first project. It takes about two "
              "minutes."),
             "Set up your first project", None),
        Beat("Did you get set up?", "A quick check-in and a shortcut",
             ("Yesterday we pointed you to your first project. If you have done it, well done.",
              "If not, here is a shortcut: our getting-started guide walks through it screen by screen."),
             "Open the guide", {"days": 1}),
        Beat("The feature most people find next", "What our most successful users do in week one",
             ("Once the basics work, most people reach for the same feature next: inviting a colleague.",
              "{product} gets more useful with every person who joins you."),
             "Invite a colleague", {"days": 2}),
        Beat("Getting the most out of {product}", "Tips from our support team",
             ("Our support team answers the same few questions every week. Here are their three best tips.",
              "Each one takes less than five minutes and saves far more."),
             "Read the tips", {"days": 3}),
        Beat("How is {product} working for you?", "Two questions, one minute",
             ("You have been with us for a week now. We would love to hear how it is going.",
              "Reply with what works and what does not. Every answer is read by the team building {product}."),
             "Share your feedback", {"days": 3}),
    ),
    keep=(0, 1, 4, 2, 3),
    exit_event=None,
)

ABANDONED_CART = Blueprint(
    key="abandoned_cart", title="Abandoned cart",
    what="Reminds a shopper of what they left in the cart, answers the usual doubts, and stops when they buy.",
    keywords=("cart", "carts", "checkout", "abandon", "abandoned", "abandonment", "basket", "left behind",
              "recover", "recovery"),
    beats=(
        Beat("You left something in your cart", "Your {product} is still waiting for you",
             ("You were looking at {product} and did not finish checking out. No problem: we saved your cart.",
              "It will be there whenever you are ready."),
             "Return to your cart", {"hours": 1}),
        Beat("Any questions about {product}?", "Answers to what people usually ask",
             ("Sometimes a question gets in the way. Here are answers to the ones we hear most: delivery times, "
              "returns and sizing.",
              "If yours is not there, reply to this email and we will answer it personally."),
             "Read the answers", {"days": 1}),
        Beat("What customers say about {product}", "Reviews from people who bought it",
             ("Not sure yet? Here is what customers say after using {product} for a while.",
              "Your cart is still saved if you want to pick up where you left off."),
             "See the reviews", {"days": 1}),
        Beat("Still thinking about {product}?", "A last reminder from us",
             ("This is our last reminder about the {product} in your cart.",
              "If {product} is not right for you, we understand, and we will not write about this cart again."),
             "Complete your order", {"days": 2}),
    ),
    keep=(0, 1, 3, 2),
    exit_event="purchase",
)

WIN_BACK = Blueprint(
    key="win_back", title="Win-back",
    what="Reaches out to people who went quiet: what is new, a reason to return, and an easy way to say no.",
    keywords=("win back", "winback", "win-back", "lapsed", "inactive", "re-engage", "reengage", "re-engagement",
              "reengagement", "come back", "churn", "churned", "dormant", "lost customers", "reactivate",
              "reactivation", "miss you"),
    beats=(
        Beat("It has been a while", "Here is what changed at {product}",
             ("We have not seen you in a while, and a lot has changed at {product} since your last visit.",
              "Here are the three improvements our customers noticed most."),
             "See what is new", None),
        Beat("We would love to have you back", "See what you have been missing",
             ("You were part of {product} before, and we would like to welcome you back.",
              "Take a look at what is new. We think you will like what you find."),
             "Come back to {product}", {"days": 3}),
        Beat("What could we have done better?", "One question, and we read every answer",
             ("If something made you stop using {product}, we would like to know.",
              "Reply with a line or two. It goes straight to the team and helps us do better."),
             "Tell us", {"days": 4}),
        Beat("Should we keep writing to you?", "Choose whether you hear from us",
             ("We do not want to fill your inbox with email you do not read.",
              "If you would still like to hear about {product}, visit us once and we will keep you on the "
              "list. If not, you can unsubscribe below, no hard feelings."),
             "Keep me on the list", {"days": 5}),
    ),
    keep=(0, 1, 3, 2),
    exit_event="purchase",
)

POST_PURCHASE = Blueprint(
    key="post_purchase", title="Post-purchase",
    what="Thanks a customer, helps them get value from what they bought, asks for a review, suggests what's next.",
    keywords=("post-purchase", "post purchase", "after purchase", "after buying", "purchase", "purchased",
              "order", "orders", "bought", "customer", "customers", "review", "reviews", "thank you", "receipt",
              "delivery", "repeat", "upsell", "cross-sell"),
    beats=(
        Beat("Thank you for your order", "Here is how to get started with {product}",
             ("Thank you for choosing {product}. We are preparing everything for you.",
              "While you wait, here is a short guide to getting the most from it on day one."),
             "Read the guide", None),
        Beat("Getting started with {product}", "Three tips for the first week",
             ("Now that {product} is with you, here are three tips our customers wish they had known from the "
              "start.",
              "None of them takes more than five minutes."),
             "See the tips", {"days": 3}),
        Beat("How are you finding {product}?", "Your review helps other people choose",
             ("You have had {product} for a little while. How is it going?",
              "A short review helps other people decide, and helps us improve. It takes about a minute."),
             "Write a review", {"days": 7}),
        Beat("Made to go with {product}", "Picked for you by our team",
             ("Customers who enjoy {product} often pair it with a few things we make.",
              "Have a look if you are curious. There is nothing you need to do."),
             "See the collection", {"days": 7}),
        Beat("Thanks for being a customer", "A note from {sender}",
             ("A month ago you chose {product}. Thank you for trusting us.",
              "If anything is not right, reply to this email. We are here to help."),
             None, {"days": 14}),
    ),
    keep=(0, 2, 1, 3, 4),
)

WEBINAR = Blueprint(
    key="webinar", title="Webinar",
    what="Invites people to a live session, reminds them before it starts, and follows up with the recording.",
    keywords=("webinar", "webinars", "workshop", "live session", "live event", "event", "session", "conference",
              "masterclass", "livestream", "live stream", "demo day", "talk", "seminar"),
    beats=(
        Beat("You are invited: {product} live", "A live session with time for your questions",
             ("We are hosting a live session about {product}, made for {audience}.",
              "Bring your questions: the second half is for answering them."),
             "Save your seat", None),
        Beat("A week to go", "What we will cover, and how to join",
             ("The live session about {product} is a week away. Here is what we will cover and how to join.",
              "Add it to your calendar now so you do not miss it."),
             "Add to calendar", {"days": 3}),
        Beat("Tomorrow: {product} live", "A reminder and the link to join",
             ("Just a reminder: the session is tomorrow. The joining link is below.",
              "If you cannot make it, we will send you the recording."),
             "Join the session", {"days": 3}),
        Beat("The recording is ready", "Watch it whenever suits you",
             ("Thank you for your interest in the session about {product}. The recording is ready.",
              "The questions from the audience start about halfway through."),
             "Watch the recording", {"days": 2}),
        Beat("What did you think?", "Two questions about the session",
             ("We would love to know what you found useful and what you would like us to cover next time.",
              "Reply with a sentence or two: it shapes our next session."),
             "Share your thoughts", {"days": 2}),
    ),
    keep=(0, 2, 3, 1, 4),
)

# Value emails that lengthen any blueprint, added before its last email.
EXTRAS = (
    Beat("A quick tip for {product}", "Something most people discover too late",
         ("Here is a small thing that makes a big difference with {product}: set it up once the way you like "
          "it, and it stays that way.",),
         "See how", {"days": 2}),
    Beat("Questions people ask about {product}", "Short answers to common questions",
         ("We collected the questions we hear most about {product} and answered each in a few lines.",),
         "Read the answers", {"days": 2}),
    Beat("How one customer uses {product}", "A short story from someone like you",
         ("One of our customers told us how {product} fits into their week. It is a short read, and full of "
          "ideas.",),
         "Read the story", {"days": 2}),
    Beat("Behind the scenes at {product}", "Meet the people who make it",
         ("A short look at the team behind {product}, and what we are working on next.",),
         "Meet the team", {"days": 2}),
    Beat("A resource you might like", "Our best guide, in one place",
         ("We put our most useful advice about {product} into one short guide. It is yours to keep.",),
         "Get the guide", {"days": 2}),
    Beat("Ideas to try this week", "Three small experiments with {product}",
         ("Three small things to try with {product} this week. Each takes a few minutes, and one of them "
          "might become a habit.",),
         "See the ideas", {"days": 2}),
)

BLUEPRINTS: dict[str, Blueprint] = {b.key: b for b in (WELCOME, ONBOARDING, ABANDONED_CART, WIN_BACK, POST_PURCHASE,
                                                       WEBINAR)}
