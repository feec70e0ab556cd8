"""The generator's template tables: ticket templates per intent in English and German, openings, closings, PII
formats, new-product templates and the word lists that fill the slots (generated content, kept apart from the code
that renders it)."""

from __future__ import annotations

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
