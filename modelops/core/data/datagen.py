"""Deterministic synthetic corpus for the default task (customer-support ticket routing) and drift scenarios.

Every row is rendered from its own `random.Random`, seeded from one `numpy.random.default_rng(seed)` stream that
also draws the intents, the scenario membership and the label noise. The draws are identical for every scenario,
so a scenario at severity 0 reproduces `generate_corpus(n, seed)` byte for byte, and a small severity changes
only a small share of rows. No global random state is touched.

Baseline class mix (before label noise), moderately imbalanced, `fraud_report` the rare urgent class:

    shipping 16%, billing 14%, technical_issue 14%, refund 12%, account_access 12%,
    product_question 9%, cancellation 8%, complaint 6%, fraud_report 5%, address_change 4%

About 25% of texts carry PII in conventional formats (e-mail, phone, Luhn-valid card, IBAN with valid check
digits); about 7% carry one or two typos; texts stay under 1,900 characters in every scenario.
"""

from __future__ import annotations

import logging
import math
import random
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

INTENTS: tuple[str, ...] = ("billing", "refund", "shipping", "account_access", "technical_issue",
                            "cancellation", "product_question", "complaint", "fraud_report", "address_change")

BASE_PRIORS: dict[str, float] = {
    "billing": 0.14, "refund": 0.12, "shipping": 0.16, "account_access": 0.12, "technical_issue": 0.14,
    "cancellation": 0.08, "product_question": 0.09, "complaint": 0.06, "fraud_report": 0.05, "address_change": 0.04,
}
# A delivery outage: shipping and complaint surge, refunds and cancellations follow.
OUTAGE_PRIORS: dict[str, float] = {
    "billing": 0.06, "refund": 0.14, "shipping": 0.34, "account_access": 0.05, "technical_issue": 0.05,
    "cancellation": 0.08, "product_question": 0.03, "complaint": 0.20, "fraud_report": 0.03, "address_change": 0.02,
}

PII_RATE = 0.25
TYPO_RATE = 0.07
MAX_TEXT_CHARS = 1900
SCENARIO_LABEL_NOISE = 0.03  # the default of generate_corpus, so severity 0 reproduces it


class UnknownScenarioError(ValueError):
    """A drift scenario name that `generate_scenario` does not know."""


@dataclass(frozen=True)
class DriftScenario:
    """A named, parameterised change of the data distribution."""

    name: str
    description: str
    expected_effect: str


SCENARIOS: dict[str, DriftScenario] = {
    s.name: s for s in (
        DriftScenario(
            "new_product",
            "Tickets about a product line the baseline never mentions (eSIM travel/data plans, NovaTherm smart "
            "thermostat) spread over all existing intents; share of such tickets = severity.",
            "New vocabulary (esim, thermostat, roaming, qr, boiler, ...) appears; text-embedding drift rises with "
            "severity while the label mix stays the same; accuracy on these tickets may drop."),
        DriftScenario(
            "prior_shift",
            "The intent mix moves towards a delivery outage (shipping 16%->34%, complaint 6%->20%, refund up, "
            "billing/account/technical down); priors = (1 - severity) * baseline + severity * outage.",
            "Label / prediction distribution drift (e.g. chi-square or PSI on labels) grows with severity; "
            "per-ticket text stays in-distribution."),
        DriftScenario(
            "language_shift",
            "A share (= severity) of tickets is written in German, with its own templates per intent and "
            "German openings, closings, dates and amounts; labels unchanged.",
            "Non-ASCII characters and out-of-vocabulary German words appear; embedding drift rises; an "
            "English-trained model loses accuracy on the German share."),
        DriftScenario(
            "length_shift",
            "A share (= severity) of tickets gets extra context sentences and a pasted order history; the number "
            "of added sentences and history lines also grows with severity (texts capped at 1,900 characters).",
            "Text-length statistics (mean, p95) shift upwards; truncation at the model's max length becomes "
            "more frequent; intent words are diluted by boilerplate."),
    )
}

# --------------------------------------------------------------------------------------------- English templates

EN_TEMPLATES: dict[str, tuple[str, ...]] = {
    "billing": (
        "I was charged twice for my {plan} this month. Can you check the invoice?",
        "Why is my bill {amount} higher than last month? I didn't change anything on my plan.",
        "There's a charge of {amount} on my statement dated {date} that I don't understand.",
        "My invoice for order {order} shows the wrong VAT amount.",
        "Can you send me a copy of the invoice for {order}? I need it for my expense report.",
        "The payment for my {plan} failed but I still see a pending charge of {amount}.",
        "I'd like to update the card you bill for my subscription.",
        "My monthly fee went up without any notice. Please explain the new pricing.",
        "You billed me {amount} for the {plan} even though I'm on the free tier.",
        "Invoice needed for {order}, the company name must be on it.",
        "How do I switch from monthly to annual billing?",
        "The direct debit was taken on {date} instead of the first of the month.",
        "double charged?? {amount} twice on my bank statement",
        "Where can I download my past invoices and receipts?",
        "The price at checkout was lower than what was actually debited from my account.",
    ),
    "refund": (
        "I returned the {product} on {date} and still haven't received my refund.",
        "Please refund the {amount} for order {order}, the item arrived broken.",
        "How long does it take for a refund to show up on my card?",
        "I sent the {product} back two weeks ago. When will I get my money back?",
        "You approved my return for {order} but the refund was only partial.",
        "I want my money back for the {product}, it stopped working after {days} days.",
        "The return label says the parcel reached your warehouse on {date}, but no reimbursement yet.",
        "Can I get a refund instead of store credit for order {order}?",
        "refund status for {order} pls",
        "I cancelled the order before it shipped, please reimburse the {amount}.",
        "The refund went to an old card that is now closed. How can I receive it?",
        "Return request for the {product}: it does not match the description, I'd like a full refund.",
        "Still waiting on the {amount} reimbursement you promised on {date}.",
        "The {product} was returned unopened, why was a restocking fee deducted from my refund?",
    ),
    "shipping": (
        "My order {order} hasn't arrived yet. The tracking hasn't updated since {date}.",
        "Where is my package? It was supposed to arrive {days} days ago.",
        "The tracking for {order} says delivered but I never got the parcel.",
        "{carrier} shows my shipment stuck in customs. What should I do?",
        "Can you tell me when my {product} will be delivered?",
        "Is express delivery available in my area? I need the {product} by Friday.",
        "The courier left a note but I wasn't home. How do I rearrange the delivery?",
        "My parcel from order {order} is held at the depot, any update?",
        "tracking link for {order} doesn't work, where's my stuff",
        "Order {order} only partially arrived, the second box seems lost in transit.",
        "Do you ship internationally to Canada and what does postage cost?",
        "Estimated delivery was {date} but {carrier} now says next week.",
        "The parcel was delivered to a neighbour I don't know.",
        "Has my {product} been dispatched yet? The order status still says processing.",
    ),
    "account_access": (
        "I can't log in to my account, it says my password is incorrect.",
        "The password reset email never arrives, I've checked the spam folder too.",
        "My account got locked after too many login attempts.",
        "I'm not receiving the two-factor authentication code on my new phone.",
        "I changed phones and lost access to my authenticator app.",
        "How do I change the email address I use to sign in?",
        "The verification link you sent says it has expired.",
        "locked out again!! can't sign in on my {device}",
        "I keep getting logged out of the app every few minutes.",
        "My username isn't recognised although I've had an account for years.",
        "Sign in with Google stopped working for my profile.",
        "Please unlock my account, I need to access my order history.",
        "The one-time passcode is rejected every time I enter it.",
        "After the password reset I still get 'invalid credentials' on the {device}.",
    ),
    "technical_issue": (
        "The app crashes every time I open the checkout page on my {device}.",
        "My {product} won't connect to Wi-Fi after the latest firmware update.",
        "I get {error} when I try to upload a file.",
        "The website is extremely slow and images don't load.",
        "The {product} keeps restarting by itself.",
        "Bluetooth pairing between the {product} and my {device} fails every time.",
        "After updating the app the screen just stays blank.",
        "The companion app doesn't sync data from my {product} anymore.",
        "{error} on the order page in {device}, cannot continue.",
        "notifications stopped working after the update",
        "The {product} battery drains within an hour, is this a known bug?",
        "The search function returns no results, even for items I know you sell.",
        "The {product} makes a clicking noise and shows a red error light.",
        "Video playback freezes in the app on my {device} since yesterday's release.",
    ),
    "cancellation": (
        "Please cancel my {plan}, I no longer need it.",
        "I want to cancel order {order} before it ships.",
        "How do I end my subscription? I can't find the option in settings.",
        "Cancel my membership effective immediately.",
        "I'd like to close my account and stop all future payments.",
        "Do I have to pay a fee if I terminate my contract early?",
        "I ordered the {product} by mistake, can you cancel it?",
        "please stop the auto-renewal of my {plan}",
        "I'm moving abroad and need to terminate the {plan} at the end of this month.",
        "Can you confirm my cancellation from {date} went through?",
        "Unsubscribe me from the {plan}, I'm not renewing.",
        "What's the notice period for cancelling the {plan}?",
        "I want to downgrade or cancel, whichever ends the contract sooner.",
        "Don't send order {order}, I changed my mind and want to call it off.",
    ),
    "product_question": (
        "Is the {product} compatible with my {device}?",
        "What are the dimensions and weight of the {product}?",
        "Does the {product} come with a warranty, and for how long?",
        "Will the {product} be back in stock soon?",
        "What's the difference between the {product} and the Pro version?",
        "Can the {product} be used outdoors?",
        "Does the {product} include a charger in the box?",
        "Is there a student discount on the {product}?",
        "which colours does the {product} come in?",
        "How loud is the {product} on its highest setting?",
        "Are replacement parts available for the {product}?",
        "Is the {product} waterproof or just splash resistant?",
        "Before I buy: does the {product} support voice assistants?",
        "What materials is the {product} made of, any plastic parts?",
    ),
    "complaint": (
        "I'm very disappointed with the service I received from your agent.",
        "This is the third time I've had to contact you about the same problem. Unacceptable.",
        "Your customer service is terrible, nobody ever answers the phone.",
        "The quality of the {product} is far below what was advertised.",
        "I waited {days} days for a reply to my email. Not good enough.",
        "The delivery driver was rude and threw the box over the fence.",
        "I want to file a formal complaint about how my case was handled.",
        "Nobody has followed up on my issue from {date}. I'm extremely frustrated.",
        "worst experience ever, never ordering from you again",
        "The staff in your {city} store were unhelpful and dismissive.",
        "I feel misled by your advertising for the {product}.",
        "I'd like to speak to a manager about the way I was treated.",
        "Your chatbot keeps sending me in circles and I'm fed up.",
        "Shocking attitude from the person I spoke to today, I expect an apology.",
    ),
    "fraud_report": (
        "There are transactions on my account I did not make, please block my card immediately.",
        "Someone placed order {order} using my account without my permission.",
        "I received a phishing email pretending to be from you asking for my password.",
        "My account was hacked and the delivery address was changed to one I don't know.",
        "I see a charge of {amount} from {date} that I never authorised. I think my card was stolen.",
        "A caller claiming to be your support asked for my card details. Is this a scam?",
        "URGENT: unauthorised purchases on my account, please freeze it.",
        "Someone is draining my gift card balance, I didn't spend that {amount}.",
        "I got a text message with a fake delivery link that imitates your company.",
        "suspicious login from another country on my account, it wasn't me!!",
        "Multiple orders I never placed are showing in my history, this is fraud.",
        "My identity was used to open an account with you. Please investigate.",
        "I think my payment details were stolen after shopping on your site.",
        "Criminals used my stolen details to buy a {product}, please stop the order.",
    ),
    "address_change": (
        "I moved recently, please update my delivery address for order {order}.",
        "Can I change the shipping address on an order that hasn't shipped yet?",
        "I need to update my billing address to my new flat in {city}.",
        "Please send order {order} to my work address instead.",
        "I entered the wrong postcode for my order, can you correct it?",
        "How do I edit the default address in my profile?",
        "Please change the house number on my account, I typed it wrong.",
        "Wrong street name on order {order}, it should be {street}.",
        "new address for all future deliveries: {street}, {city}",
        "I'm relocating to {city} next month, how do I update my address?",
        "Update my address please, the old one is no longer valid.",
        "Can you redirect order {order} to my parents' address in {city}?",
        "My address is missing the apartment number, please add flat {flat}.",
    ),
}

EN_DETAILS: dict[str, tuple[str, ...]] = {
    "billing": ("My account is on the {plan}.", "I've attached a screenshot of the statement.",
                "I need the correct invoice before the end of the quarter."),
    "refund": ("The return was dropped off at the post office.", "I still have the return receipt.",
               "I paid with my credit card, so the money should go back there."),
    "shipping": ("It was sent with {carrier}.", "I paid extra for next-day delivery.",
                 "Nobody rang the doorbell today."),
    "account_access": ("I'm trying from my {device}.", "I already cleared the cache and cookies.",
                       "The email on the account is still the same."),
    "technical_issue": ("I already tried restarting and reinstalling.", "I'm using the latest version on my {device}.",
                        "It worked fine until last week."),
    "cancellation": ("I don't want to be charged again next month.", "Please send me a written confirmation.",
                     "I found a cheaper alternative."),
    "product_question": ("I'm thinking of buying it as a gift.", "The product page doesn't say.",
                         "I couldn't find this in the manual."),
    "complaint": ("I expected much better from you.", "I'll be leaving a review about this.",
                  "I've been a customer for {years} years."),
    "fraud_report": ("Please treat this as urgent.", "I have already called my bank.",
                     "I never shared my password with anyone."),
    "address_change": ("The order was placed before I moved.", "The new address is already saved in my profile.",
                       "I won't be at the old address anymore."),
}

EN_OPENINGS = ("", "", "", "Hi,", "Hello,", "Hi there,", "Dear support team,", "Good morning,", "Hey,",
               "To whom it may concern,", "Hello support,", "Hi team,", "Quick question:", "Hope you can help.")
EN_CLOSINGS = ("", "", "", "Thanks.", "Thank you!", "Thanks in advance, {name}", "Regards, {name}", "Best, {name}",
               "Cheers", "Please help.", "Kind regards, {name}", "Appreciate it.", "Please get back to me asap.")
EN_PII = {
    "email": ("You can reach me at {email}.", "My email is {email}.", "Please reply to {email}.",
              "The account email is {email}."),
    "phone": ("Call me on {phone}.", "My phone number is {phone}.", "Please ring me back at {phone}.",
              "Best number to reach me: {phone}."),
    "card": ("The card in question is {card}.", "It was charged to card {card}.", "Card number: {card}."),
    "iban": ("My IBAN is {iban}.", "Please use IBAN {iban}.", "Bank account (IBAN): {iban}."),
}
PII_KIND_WEIGHTS: dict[str, tuple[float, float, float, float]] = {  # email, phone, card, iban
    "billing": (0.3, 0.2, 0.3, 0.2), "refund": (0.3, 0.2, 0.25, 0.25), "fraud_report": (0.25, 0.25, 0.4, 0.1),
    "cancellation": (0.4, 0.3, 0.15, 0.15),
}
DEFAULT_PII_WEIGHTS = (0.55, 0.35, 0.05, 0.05)

# ---------------------------------------------------------------------------------------- new product (scenario)

NEW_PRODUCT_TEMPLATES: dict[str, tuple[str, ...]] = {
    "billing": ("I was billed for roaming on my {new_product} even though I stayed at home.",
                "My {new_product} invoice shows a {amount} data add-on I never bought.",
                "Why does the {new_product} cost {amount} a month when the advert said less?",
                "The monthly charge for the thermostat cloud service appeared twice."),
    "refund": ("I returned the {new_product} on {date}, where is my refund?",
               "The eSIM never activated, please refund the {amount} I paid.",
               "Refund request: the smart thermostat doesn't work with my boiler.",
               "Please reimburse the unused data on my {new_product}."),
    "shipping": ("When will the smart thermostat from order {order} be delivered?",
                 "The {new_product} starter kit hasn't arrived, tracking stuck since {date}.",
                 "Has the thermostat wall plate been dispatched with {carrier} yet?",
                 "I was told the eSIM QR code would be emailed, it never arrived."),
    "account_access": ("I can't log in to the thermostat app after the factory reset.",
                       "My eSIM portal account is locked and I can't see my data balance.",
                       "The {new_product} app rejects my password even after a reset.",
                       "The two-factor code for the eSIM dashboard never arrives."),
    "technical_issue": ("My {new_product} won't activate, the QR code scan fails with {error}.",
                        "The smart thermostat ignores the heating schedule and keeps the boiler running.",
                        "No data connection after installing the eSIM profile on my {device}.",
                        "The thermostat shows the wrong room temperature and geofencing never triggers."),
    "cancellation": ("Please cancel my {new_product} at the end of this billing cycle.",
                     "I want to stop the thermostat cloud subscription.",
                     "How do I deactivate the eSIM and end the plan?",
                     "Cancel the roaming add-on on my {new_product}."),
    "product_question": ("Does the {new_product} work in Japan and how much data is included?",
                         "Is the smart thermostat compatible with underfloor heating?",
                         "Can I use the eSIM on a dual-SIM phone?",
                         "Does the thermostat support HVAC systems with heat pumps?"),
    "complaint": ("The {new_product} is a disappointment, coverage is awful everywhere I travel.",
                  "Your thermostat install guide is useless and support never called back.",
                  "I'm frustrated that the eSIM plan throttles speed without warning.",
                  "Terrible experience with the {new_product}, nothing works as advertised."),
    "fraud_report": ("Someone ported my number to a new eSIM without my permission.",
                     "There are thermostat subscriptions on my card I never authorised.",
                     "A SIM swap was done on my line, I think it's fraud, please block it.",
                     "An unknown device activated an eSIM on my account, please freeze it."),
    "address_change": ("Please update the installation address for my smart thermostat.",
                       "I moved to {city}, update the address on my eSIM account.",
                       "The thermostat installer has my old address, please correct it.",
                       "Change the billing address for my {new_product} to {street}, {city}."),
}
NEW_PRODUCTS = ("eSIM travel plan", "eSIM data plan", "NovaTherm smart thermostat", "smart thermostat",
                "eSIM roaming plan", "NovaTherm thermostat")

# ------------------------------------------------------------------------------------- German (language_shift)

DE_TEMPLATES: dict[str, tuple[str, ...]] = {
    "billing": ("Mir wurde mein {plan_de} diesen Monat doppelt berechnet. Können Sie die Rechnung prüfen?",
                "Warum ist meine Rechnung {amount_de} höher als im letzten Monat?",
                "Auf meinem Kontoauszug steht eine Abbuchung über {amount_de} vom {date_de}, die ich nicht verstehe.",
                "Bitte schicken Sie mir eine Kopie der Rechnung für Bestellung {order}.",
                "Die Lastschrift wurde am {date_de} eingezogen statt zum Monatsanfang.",
                "Wie kann ich von monatlicher auf jährliche Zahlung umstellen?",
                "Die Mehrwertsteuer auf meiner Rechnung für {order} ist falsch ausgewiesen."),
    "refund": ("Ich habe das {product_de} am {date_de} zurückgeschickt und noch keine Erstattung erhalten.",
               "Bitte erstatten Sie die {amount_de} für Bestellung {order}, der Artikel kam kaputt an.",
               "Wie lange dauert es, bis die Rückerstattung auf meiner Karte erscheint?",
               "Ich möchte mein Geld für das {product_de} zurück, es funktioniert nach {days} Tagen nicht mehr.",
               "Die Rücksendung ist seit dem {date_de} in Ihrem Lager, aber das Geld fehlt noch.",
               "Für {order} wurde nur ein Teil des Betrags zurückgezahlt."),
    "shipping": ("Meine Bestellung {order} ist noch nicht angekommen, die Sendungsverfolgung steht seit dem "
                 "{date_de} still.",
                 "Wo bleibt mein Paket? Es hätte vor {days} Tagen geliefert werden sollen.",
                 "Laut Sendungsverfolgung wurde {order} zugestellt, aber ich habe nichts erhalten.",
                 "{carrier} meldet, dass meine Sendung beim Zoll festhängt.",
                 "Wann wird mein {product_de} geliefert?",
                 "Der Paketbote hat eine Karte hinterlassen, wie kann ich die Zustellung neu vereinbaren?"),
    "account_access": ("Ich kann mich nicht in mein Konto einloggen, das Passwort wird als falsch angezeigt.",
                       "Die E-Mail zum Zurücksetzen des Passworts kommt nie an.",
                       "Mein Konto wurde nach zu vielen Anmeldeversuchen gesperrt.",
                       "Ich bekomme den Bestätigungscode für die Zwei-Faktor-Anmeldung nicht.",
                       "Der Bestätigungslink ist abgelaufen, was kann ich tun?",
                       "Ich werde in der App ständig abgemeldet."),
    "technical_issue": ("Die App stürzt jedes Mal ab, wenn ich auf meinem {device} die Kasse öffne.",
                        "Mein {product_de} verbindet sich nach dem letzten Update nicht mehr mit dem WLAN.",
                        "Beim Hochladen einer Datei erscheint {error}.",
                        "Die Webseite lädt extrem langsam und Bilder werden nicht angezeigt.",
                        "Das {product_de} startet ständig von selbst neu.",
                        "Die Bluetooth-Kopplung mit meinem {device} schlägt jedes Mal fehl."),
    "cancellation": ("Bitte kündigen Sie meinen {plan_de}, ich brauche ihn nicht mehr.",
                     "Ich möchte die Bestellung {order} stornieren, bevor sie verschickt wird.",
                     "Wie beende ich mein Abo? Ich finde die Option in den Einstellungen nicht.",
                     "Ich möchte mein Konto schließen und alle künftigen Zahlungen stoppen.",
                     "Fällt eine Gebühr an, wenn ich den Vertrag vorzeitig kündige?",
                     "Bitte die automatische Verlängerung für meinen {plan_de} beenden."),
    "product_question": ("Ist das {product_de} mit meinem {device} kompatibel?",
                         "Welche Maße und welches Gewicht hat das {product_de}?",
                         "Gibt es auf das {product_de} eine Garantie, und wie lange gilt sie?",
                         "Wann ist das {product_de} wieder lieferbar?",
                         "Kann man das {product_de} auch im Freien benutzen?",
                         "In welchen Farben gibt es das {product_de}?"),
    "complaint": ("Ich bin sehr enttäuscht von Ihrem Kundenservice.",
                  "Das ist schon das dritte Mal, dass ich mich wegen desselben Problems melde. Inakzeptabel.",
                  "Niemand geht bei Ihrer Hotline ans Telefon, das ist eine Frechheit.",
                  "Die Qualität vom {product_de} ist weit schlechter als beworben.",
                  "Ich möchte eine offizielle Beschwerde über die Bearbeitung meines Falls einreichen.",
                  "Seit {days} Tagen warte ich auf eine Antwort. Das ist nicht akzeptabel."),
    "fraud_report": ("Auf meinem Konto gibt es Buchungen, die ich nicht getätigt habe. Bitte sperren Sie sofort "
                     "meine Karte.",
                     "Jemand hat mit meinem Konto ohne meine Erlaubnis die Bestellung {order} aufgegeben.",
                     "Ich habe eine Phishing-E-Mail bekommen, die angeblich von Ihnen stammt.",
                     "Mein Konto wurde gehackt und die Lieferadresse geändert.",
                     "Eine Abbuchung über {amount_de} vom {date_de} habe ich nie autorisiert. Meine Karte wurde "
                     "wohl gestohlen.",
                     "DRINGEND: unautorisierte Käufe auf meinem Konto, bitte sofort sperren!"),
    "address_change": ("Ich bin umgezogen, bitte ändern Sie die Lieferadresse für Bestellung {order}.",
                       "Kann ich die Lieferadresse noch ändern, solange die Bestellung nicht verschickt ist?",
                       "Bitte aktualisieren Sie meine Rechnungsadresse auf meine neue Wohnung in {city_de}.",
                       "Ich habe die falsche Postleitzahl eingegeben, können Sie das korrigieren?",
                       "Neue Adresse für alle künftigen Lieferungen: {street_de}, {city_de}",
                       "Bitte schicken Sie {order} an meine Büroadresse."),
}
DE_OPENINGS = ("", "", "Hallo,", "Guten Tag,", "Sehr geehrte Damen und Herren,", "Hallo zusammen,", "Moin,",
               "Liebes Support-Team,")
DE_CLOSINGS = ("", "", "Danke.", "Vielen Dank!", "Mit freundlichen Grüßen, {name}", "Viele Grüße, {name}",
               "Bitte um schnelle Hilfe.", "LG {name}", "Danke im Voraus.")
DE_PII = {
    "email": ("Sie erreichen mich unter {email}.", "Meine E-Mail-Adresse lautet {email}."),
    "phone": ("Rufen Sie mich bitte unter {phone} an.", "Meine Telefonnummer: {phone}."),
    "card": ("Es geht um die Karte {card}.", "Kartennummer: {card}."),
    "iban": ("Meine IBAN lautet {iban}.", "Bitte überweisen Sie auf IBAN {iban}."),
}

# ---------------------------------------------------------------------------------------- length_shift context

LONG_CONTEXT = (
    "I have been a loyal customer for {years} years and have never had a problem like this before.",
    "I already contacted you via the chat last week but the conversation was closed without an answer.",
    "My previous ticket number was {ticket}, in case that helps.",
    "I am writing this from my partner's laptop because my own is being repaired.",
    "To give you some background, I placed several orders over the past months for my small business.",
    "I read through your FAQ and help centre articles but could not find an answer.",
    "I would appreciate it if you could get back to me by email rather than by phone.",
    "Please note I'm travelling next week and may reply with some delay.",
    "I have attached screenshots to this message, although I'm not sure the upload worked.",
    "Your colleague on the phone told me to open a new ticket for this.",
    "I'm available most weekdays between nine and five if someone needs to call me.",
    "I hope this message reaches the right department.",
    "My account is registered under my maiden name, just so you know.",
    "Sorry for the long message, I just want to make sure you have all the details.",
    "I have also asked a friend who had something similar, but their situation was different.",
    "I would really appreciate a quick and clear answer this time.",
)
HISTORY_STATUSES = ("delivered", "shipped", "processing", "returned", "cancelled")

# ------------------------------------------------------------------------------------------------ slot fillers

PRODUCTS = ("wireless earbuds", "AeroBlend blender", "4K monitor", "standing desk", "robot vacuum",
            "espresso machine", "gaming headset", "fitness tracker", "air purifier", "electric toothbrush",
            "smartwatch", "laptop stand", "mechanical keyboard", "Bluetooth speaker", "office chair",
            "coffee grinder", "hiking backpack", "e-reader", "webcam", "Wi-Fi router", "baby monitor",
            "electric kettle", "noise-cancelling headphones", "portable charger")
PRODUCTS_DE = ("Headset", "Tablet", "Fitnessarmband", "Netzteil", "Smartphone", "Mikrofon", "Gaming-Headset",
               "Küchengerät", "Bügeleisen", "Soundsystem", "E-Book-Lesegerät", "Ladegerät")
PLANS = ("Premium plan", "Basic subscription", "Pro membership", "family plan", "annual plan", "Plus plan",
         "streaming add-on")
PLANS_DE = ("Premium-Tarif", "Basis-Tarif", "Familientarif", "Jahrestarif", "Vertrag")
DEVICES = ("iPhone", "Android phone", "Windows laptop", "MacBook", "iPad", "Chromebook", "Samsung tablet",
           "Pixel phone")
ERRORS = ("error E-1042", "error 0x80070005", "a '500 Internal Server Error'", "ERR_CONNECTION_RESET",
          "a blank white screen", "'Something went wrong'", "error code NET-0017", "a timeout message")
CARRIERS = ("DHL", "UPS", "FedEx", "the courier", "DPD", "Royal Mail", "USPS", "Hermes")
CITIES = ("Manchester", "Leeds", "Boston", "Chicago", "Dublin", "Toronto", "Bristol", "Denver", "Glasgow", "Austin")
CITIES_DE = ("Berlin", "München", "Köln", "Düsseldorf", "Nürnberg", "Hamburg", "Lübeck", "Würzburg")
STREETS = ("Baker Street", "Elm Road", "Maple Avenue", "High Street", "Station Road", "Oak Lane", "Church Street",
           "Park Avenue", "Mill Lane", "Victoria Road")
STREETS_DE = ("Hauptstraße", "Schillerstraße", "Goethestraße", "Bahnhofstraße", "Gartenweg", "Lindenallee",
              "Mühlenweg", "Königstraße")
NAMES = ("Maria", "James", "Aisha", "Lukas", "Sofia", "Tom", "Priya", "Chen", "Olivia", "Mateo", "Hannah",
         "Kwame", "Elena", "Noah", "Yuki", "Fatima")
SURNAMES = ("smith", "jones", "garcia", "muller", "nguyen", "patel", "kowalski", "brown", "rossi", "okafor")
MAIL_DOMAINS = ("gmail.com", "outlook.com", "yahoo.co.uk", "web.de", "icloud.com", "example.org", "proton.me",
                "company.co.uk")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
MONTHS_DE = ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
             "November", "Dezember")
RELATIVE_DAYS = ("yesterday", "last Monday", "last Friday", "the weekend")
DAY_WORDS = ("3", "5", "7", "10", "12", "14", "21", "three", "five", "ten")
ORDER_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
CENTS = ("00", "99", "49", "50", "95", "25")
# (format, digit count): `{0}` is all digits, or `{0}`/`{1}` the first three and the rest.
PHONE_FORMATS: tuple[tuple[str, int], ...] = (
    ("+44 20 7946 {0}", 4), ("+49 151 {0}", 8), ("(212) 555-{0}", 4), ("+1 415-555-{0}", 4), ("020 7946 {0}", 4),
    ("0176 {0}", 8), ("+34 612 {0} {1}", 6), ("+1-202-555-{0}", 4), ("07700 900{0}", 3), ("+49 30 {0}", 7),
)
# (country, bank-code choices or empty, digits after the bank code)
IBAN_LAYOUTS: tuple[tuple[str, tuple[str, ...], int], ...] = (
    ("DE", (), 18), ("ES", (), 20), ("FR", (), 23), ("GB", ("NWBK", "BARC", "HBUK", "LOYD"), 14),
    ("NL", ("ABNA", "INGB", "RABO"), 10),
)

Rng = random.Random
Filler = Callable[[Rng], str]


def _pick(rng: Rng, options: Sequence[str]) -> str:
    """`rng.choice` without its per-call overhead (the generator renders ~100k slots per second)."""
    return options[int(rng.random() * len(options))]


def _int(rng: Rng, low: int, high: int) -> int:
    """Uniform integer in [low, high], like `rng.randint` but cheaper."""
    return low + int(rng.random() * (high - low + 1))


def _digits(rng: Rng, k: int) -> str:
    chunks = [f"{int(rng.random() * 1e9):09d}" for _ in range(-(-k // 9))]
    return "".join(chunks)[:k]


def _order(rng: Rng) -> str:
    return f"#{_pick(rng, ORDER_LETTERS)}{_int(rng, 10000, 99999)}"


def _amount(rng: Rng) -> str:
    value = f"{_int(rng, 5, 899)}.{_pick(rng, CENTS)}"
    return _pick(rng, ("${}", "€{}", "£{}", "{} USD", "{} EUR")).format(value)


def _amount_de(rng: Rng) -> str:
    return f"{_int(rng, 5, 899)},{_pick(rng, CENTS)} €"


def _date(rng: Rng) -> str:
    day, month = _int(rng, 1, 28), _int(rng, 1, 12)
    style = int(rng.random() * 5)
    if style == 0:
        return f"{MONTHS[month - 1]} {day}"
    if style == 1:
        return f"{day} {MONTHS[month - 1]}"
    if style == 2:
        return f"2024-{month:02d}-{day:02d}"
    return f"{day:02d}/{month:02d}" if style == 3 else _pick(rng, RELATIVE_DAYS)


def _date_de(rng: Rng) -> str:
    day, month = _int(rng, 1, 28), _int(rng, 1, 12)
    return f"{day:02d}.{month:02d}.2024" if rng.random() < 0.5 else f"{day}. {MONTHS_DE[month - 1]}"


def _email(rng: Rng) -> str:
    first, last = _pick(rng, NAMES).lower(), _pick(rng, SURNAMES)
    local = _pick(rng, (f"{first}.{last}", f"{first}{_int(rng, 1, 99)}", f"{first[0]}{last}", f"{first}_{last}"))
    return f"{local}@{_pick(rng, MAIL_DOMAINS)}"


def _phone(rng: Rng) -> str:
    """Conventional national or international formats with 10 to 13 digits."""
    pattern, k = PHONE_FORMATS[int(rng.random() * len(PHONE_FORMATS))]
    digits = _digits(rng, k)
    return pattern.format(digits[:3], digits[3:]) if "{1}" in pattern else pattern.format(digits)


def luhn_check_digit(payload: str) -> str:
    """The Luhn check digit that makes `payload + digit` valid."""
    total = 0
    for i, ch in enumerate(reversed(payload)):
        v = int(ch) * (2 if i % 2 == 0 else 1)
        total += v - 9 if v > 9 else v
    return str((10 - total % 10) % 10)


def _card(rng: Rng) -> str:
    """A Luhn-valid 16-digit Visa/Mastercard-like number, grouped by spaces or dashes."""
    payload = _pick(rng, ("4", "4", "51", "52", "53", "54", "55"))
    payload += _digits(rng, 15 - len(payload))
    number = payload + luhn_check_digit(payload)
    return _pick(rng, (" ", "-")).join(number[i:i + 4] for i in range(0, 16, 4))


def iban_check_digits(country: str, bban: str) -> str:
    """ISO 13616 mod-97 check digits for a country code and BBAN."""
    numeric = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    return f"{98 - int(numeric) % 97:02d}"


def _iban(rng: Rng) -> str:
    """An IBAN with valid check digits (DE, ES, FR, GB, NL), usually grouped in fours."""
    country, bank, k = IBAN_LAYOUTS[int(rng.random() * len(IBAN_LAYOUTS))]
    bban = (_pick(rng, bank) if bank else "") + _digits(rng, k)
    compact = country + iban_check_digits(country, bban) + bban
    if rng.random() < 0.2:
        return compact
    return " ".join(compact[i:i + 4] for i in range(0, len(compact), 4))


SLOT_FILLERS: dict[str, Filler] = {
    "order": _order, "amount": _amount, "amount_de": _amount_de, "date": _date, "date_de": _date_de,
    "email": _email, "phone": _phone, "card": _card, "iban": _iban,
    "product": lambda r: _pick(r, PRODUCTS), "product_de": lambda r: _pick(r, PRODUCTS_DE),
    "new_product": lambda r: _pick(r, NEW_PRODUCTS), "plan": lambda r: _pick(r, PLANS),
    "plan_de": lambda r: _pick(r, PLANS_DE), "device": lambda r: _pick(r, DEVICES),
    "error": lambda r: _pick(r, ERRORS), "carrier": lambda r: _pick(r, CARRIERS),
    "city": lambda r: _pick(r, CITIES), "city_de": lambda r: _pick(r, CITIES_DE),
    "street": lambda r: f"{_int(r, 1, 240)} {_pick(r, STREETS)}",
    "street_de": lambda r: f"{_pick(r, STREETS_DE)} {_int(r, 1, 120)}",
    "name": lambda r: _pick(r, NAMES), "days": lambda r: _pick(r, DAY_WORDS),
    "years": lambda r: str(_int(r, 2, 15)), "ticket": lambda r: f"T-{_int(r, 100000, 999999)}",
    "flat": lambda r: f"{_int(r, 1, 40)}{_pick(r, 'ABCD')}",
}
_SLOT = re.compile(r"\{(\w+)\}")
_SLOT_SPLIT = re.compile(r"(\{\w+\})")

# ---------------------------------------------------------------------------------------------------- rendering


@dataclass(frozen=True)
class _Language:
    templates: dict[str, tuple[str, ...]]
    openings: tuple[str, ...]
    closings: tuple[str, ...]
    pii: dict[str, tuple[str, ...]]


ENGLISH = _Language(EN_TEMPLATES, EN_OPENINGS, EN_CLOSINGS, EN_PII)
GERMAN = _Language(DE_TEMPLATES, DE_OPENINGS, DE_CLOSINGS, DE_PII)


def _casing(intent: str, rng: Rng) -> Callable[[str], str] | None:
    """Lower-case ~17% of tickets and shout ~3% (10% for complaints and fraud); None keeps the template's case."""
    roll = rng.random()
    shout = 0.10 if intent in ("complaint", "fraud_report") else 0.03
    if roll < shout:
        return str.upper
    return str.lower if roll < shout + 0.17 else None


def _recase(skeleton: str, case: Callable[[str], str] | None) -> str:
    """Apply `case` to the template text only, never to slot placeholders (filled later)."""
    if case is None:
        return skeleton
    return "".join(p if p.startswith("{") else case(p) for p in _SLOT_SPLIT.split(skeleton))


def _fill(skeleton: str, rng: Rng) -> str:
    if "{" not in skeleton:
        return skeleton
    return _SLOT.sub(lambda m: SLOT_FILLERS[m.group(1)](rng), skeleton)


def _add_typos(text: str, rng: Rng) -> str:
    """One or two character swaps or drops inside plain words (slot placeholders are not plain words)."""
    words = text.split(" ")
    eligible = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
    for i in rng.sample(eligible, min(len(eligible), 2 if rng.random() < 0.3 else 1)):
        w = words[i]
        pos = _int(rng, 1, len(w) - 2)
        words[i] = w[:pos] + w[pos + 1] + w[pos] + w[pos + 2:] if rng.random() < 0.5 else w[:pos] + w[pos + 1:]
    return " ".join(words)


def _pii_sentences(intent: str, language: _Language, rng: Rng) -> list[str]:
    """One (sometimes two) sentences carrying PII; the kind mix depends on the intent."""
    kinds = ("email", "phone", "card", "iban")
    weights = PII_KIND_WEIGHTS.get(intent, DEFAULT_PII_WEIGHTS)
    chosen = rng.choices(kinds, weights=weights, k=2 if rng.random() < 0.2 else 1)
    return [_pick(rng, language.pii[kind]) for kind in dict.fromkeys(chosen)]


def _body(intent: str, language: _Language, rng: Rng, new_product: bool) -> list[str]:
    """The request itself, in English often followed by a detail sentence (or a side remark on another topic)."""
    templates = NEW_PRODUCT_TEMPLATES if new_product else language.templates
    parts = [_pick(rng, templates[intent])]
    if language is not ENGLISH:
        return parts
    roll = rng.random()
    if roll < 0.3:
        parts.append(_pick(rng, EN_DETAILS[intent]))
    elif roll < 0.36:  # a side remark about another topic; the label stays the main request
        other = _pick(rng, [i for i in INTENTS if i != intent])
        detail = _pick(rng, EN_DETAILS[other])
        parts.append("Also, " + (detail if detail.startswith(("I ", "I'")) else detail[0].lower() + detail[1:]))
    return parts


def _history_line(rng: Rng) -> str:
    """One pasted order row; every field comes from a single 64-bit draw (long tickets paste many rows)."""
    bits = rng.getrandbits(64)
    bits, letter = divmod(bits, len(ORDER_LETTERS))
    bits, number = divmod(bits, 90000)
    bits, month = divmod(bits, 12)
    bits, day = divmod(bits, 28)
    bits, product = divmod(bits, len(PRODUCTS))
    bits, euros = divmod(bits, 895)
    bits, cents = divmod(bits, len(CENTS))
    status = bits % len(HISTORY_STATUSES)
    return (f"Order #{ORDER_LETTERS[letter]}{number + 10000} | 2024-{month + 1:02d}-{day + 1:02d} | "
            f"{PRODUCTS[product]} | ${euros + 5}.{CENTS[cents]} | {HISTORY_STATUSES[status]}")


def _long_context(rng: Rng, severity: float, case: Callable[[str], str] | None) -> Iterator[str]:
    """Extra context sentences, then often a pasted order history (rows not re-cased); both grow with severity.

    Yields each piece with its leading separator, lazily, so the caller stops drawing at the length cap.
    """
    count = min(2 + round(severity * 6) + _int(rng, 0, 2), len(LONG_CONTEXT))
    for sentence in rng.sample(LONG_CONTEXT, count):
        yield " " + _fill(_recase(sentence, case), rng)
    if rng.random() < 0.3 + 0.6 * severity:
        yield " " + _recase("For reference, here is my order history:", case)
        for _ in range(2 + round(severity * 6) + _int(rng, 0, 2)):
            yield "\n" + _history_line(rng)


def _render(intent: str, rng: Rng, *, language: _Language = ENGLISH, new_product: bool = False,
            long_severity: float | None = None) -> str:
    """One ticket: opening, body, optional PII, [long context], closing.

    Casing and typos are applied to the template text before the slots are filled, so PII, order numbers and
    amounts always keep their conventional format.
    """
    case = _casing(intent, rng)
    head = [_pick(rng, language.openings), *_body(intent, language, rng, new_product)]
    if rng.random() < PII_RATE:
        head += _pii_sentences(intent, language, rng)
    skeleton = _recase(" ".join(p for p in head if p), case)
    closing = _recase(_pick(rng, language.closings), case)
    if rng.random() < TYPO_RATE:
        skeleton = _add_typos(skeleton, rng)
    text, closing = _fill(skeleton, rng), _fill(closing, rng)
    if long_severity is not None:
        pieces, used = [text], len(text) + len(closing) + 1
        for addition in _long_context(rng, long_severity, case):
            if used + len(addition) > MAX_TEXT_CHARS:
                break
            pieces.append(addition)
            used += len(addition)
        text = "".join(pieces)
    return f"{text} {closing}" if closing else text

# --------------------------------------------------------------------------------------------------- generation


def _check_common(n: int, seed: int, label_noise: float) -> None:
    """Raise ValueError naming the bad argument and the accepted range."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}.")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer number of rows, got {n!r}.")
    if isinstance(label_noise, bool) or not (isinstance(label_noise, (int, float)) and 0.0 <= label_noise <= 1.0):
        raise ValueError(f"label_noise must be a fraction in [0, 1], got {label_noise!r}.")


def _priors(scenario: str | None, severity: float) -> np.ndarray:
    base = np.array([BASE_PRIORS[i] for i in INTENTS])
    if scenario != "prior_shift":
        return base / base.sum()
    shifted = np.array([OUTAGE_PRIORS[i] for i in INTENTS])
    mixed = (1.0 - severity) * base + severity * shifted
    return mixed / mixed.sum()


def _render_row(intent: str, row_seed: int, affected: bool, scenario: str | None, severity: float) -> str:
    rng = random.Random(row_seed)
    if not affected:
        return _render(intent, rng)
    if scenario == "new_product":
        return _render(intent, rng, new_product=True)
    if scenario == "language_shift":
        return _render(intent, rng, language=GERMAN)
    return _render(intent, rng, long_severity=severity)


def _generate(n: int, seed: int, label_noise: float, scenario: str | None, severity: float) -> pd.DataFrame:
    """Shared generator: the random draws never depend on the scenario, only their use does."""
    master = np.random.default_rng(seed)
    u_intent = master.random(n)
    u_affected = master.random(n)
    row_seeds = master.integers(0, 2**62, size=n)
    n_noisy = round(n * label_noise)
    noisy_rows = master.choice(n, size=n_noisy, replace=False)
    noise_offsets = master.integers(1, len(INTENTS), size=n_noisy)

    cumulative = np.cumsum(_priors(scenario, severity))
    codes = np.minimum(np.searchsorted(cumulative, u_intent, side="right"), len(INTENTS) - 1)
    row_level = scenario in ("new_product", "language_shift", "length_shift")
    affected = (u_affected < severity) if row_level else np.zeros(n, dtype=bool)
    texts = [_render_row(INTENTS[c], int(s), bool(a), scenario, severity)
             for c, s, a in zip(codes, row_seeds, affected)]
    codes[noisy_rows] = (codes[noisy_rows] + noise_offsets) % len(INTENTS)
    labels = [INTENTS[c] for c in codes]
    logger.debug("generated %d rows (seed %d, scenario %s, severity %.2f)", n, seed, scenario, severity)
    return pd.DataFrame({"text": pd.Series(texts, dtype=object), "label": pd.Series(labels, dtype=object)})


def generate_corpus(n: int, seed: int = 0, label_noise: float = 0.03) -> pd.DataFrame:
    """`n` labelled support tickets (columns `text`, `label`); a `label_noise` share gets a wrong label."""
    _check_common(n, seed, label_noise)
    return _generate(int(n), int(seed), float(label_noise), None, 0.0)


def generate_scenario(name: str, n: int, seed: int = 0, severity: float = 1.0) -> pd.DataFrame:
    """`n` tickets under drift scenario `name` (see `SCENARIOS`); severity 0 reproduces `generate_corpus(n, seed)`."""
    if name not in SCENARIOS:
        raise UnknownScenarioError(f"Unknown drift scenario {name!r}; known scenarios: {', '.join(sorted(SCENARIOS))}.")
    severity = check_severity(severity)
    _check_common(n, seed, SCENARIO_LABEL_NOISE)
    return _generate(int(n), int(seed), SCENARIO_LABEL_NOISE, name, severity)


def check_severity(severity: object) -> float:
    """`severity` as a float in [0, 1] (0 = baseline, 1 = full drift); anything else is a ValueError saying so."""
    if not (isinstance(severity, (int, float)) and not isinstance(severity, bool) and math.isfinite(severity)
            and 0.0 <= severity <= 1.0):
        raise ValueError(f"severity must be a number in [0, 1] (0 = baseline, 1 = full drift), got {severity!r}.")
    return float(severity)
