#!/usr/bin/env python3
"""Generate the demo's Model Data Collector files: a RAG support assistant of an outdoor-gear shop.

    python samples/generate.py            # rewrites samples/mdc/ and samples/manifest.json

Standard library only and deterministic (fixed seed, fixed dates): running it twice writes the same
bytes. What it writes, under `samples/mdc/` (laid out as MDC writes it into a workspace container):

    modelDataCollector/contoso-support/{blue,green}/{model_inputs,model_outputs}/yyyy/MM/dd/HH/<id>.jsonl

* three UTC days (2026-11-18 .. 2026-11-20) of traffic split over the deployments `blue` and `green`,
  with a day-night curve (the shop's customers are mostly in North America);
* inputs (`question`, `chat_history`, `ground_truth` for questions of the curated FAQ set) and outputs
  (`answer`, `context`: the paragraphs the retriever returned) in separate collections; each output is
  written a few seconds after its input, so some cross into the next hour's folder (one even into
  2026-11-21);
* some lines batch two or three requests (their rows join as `{correlationid}_{i}`); one output line
  carries its rows in a separate `.json` blob named by `dataref`;
* a few requests whose output never came (timeouts), a few malformed lines (a truncated line, a
  non-envelope log line);
* a real regression: on the last day, `green` (model version 9, a new prompt) answers drift from the
  retrieved context: unsupported promises, wrong prices, other products, off-topic marketing.

`samples/manifest.json` holds the counts the files were built with (per day and deployment), so the
demo's numbers can be checked against them.
"""

from __future__ import annotations

import json
import random
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SEED = 20261120
ENDPOINT = "contoso-support"
DAYS = (datetime(2026, 11, 18, tzinfo=UTC), datetime(2026, 11, 19, tzinfo=UTC), datetime(2026, 11, 20, tzinfo=UTC))
# Requests per day and deployment (before batching): blue takes ~55% of the traffic.
VOLUME = {"blue": 138, "green": 112}
MODEL_VERSION = {"blue": lambda day: "7", "green": lambda day: "9" if day == DAYS[-1] else "8"}
REGRESSION = ("green", DAYS[-1])
DRIFT_SHARE = 0.62          # share of drifted answers in the regressed deployment-day
FALLBACK_SHARE = 0.04       # "I could not find that" answers everywhere (realistic background failures)
BATCH_SHARE = 0.07          # lines that batch 2-3 requests
GROUND_TRUTH_SHARE = 0.4    # FAQ questions that carry a curated reference answer
ROOT = Path(__file__).resolve().parent
OUT = ROOT / "mdc"
ARM = ("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-contoso-support/providers/"
       "Microsoft.MachineLearningServices/workspaces/ws-contoso/onlineEndpoints/contoso-support/deployments/")
# Hour-of-day weights (UTC): North American daytime is 15:00-04:00 UTC.
HOUR_WEIGHTS = (6, 5, 4, 3, 2, 1, 1, 1, 1, 1, 1, 2, 2, 3, 5, 7, 9, 10, 10, 10, 9, 9, 8, 7)


# --- the shop: product sheets and policies (the retriever's documents) -----------------------------

@dataclass(frozen=True)
class Topic:
    """One kind of question about one document: question wordings, good answers, the FAQ answer."""

    questions: tuple[str, ...]
    answers: tuple[str, ...]
    truth: str | None = None


@dataclass(frozen=True)
class Doc:
    key: str
    title: str
    text: str
    price: int | None = None
    topics: tuple[Topic, ...] = field(default_factory=tuple)


def T(questions: list[str], answers: list[str], truth: str | None = None) -> Topic:  # noqa: N802
    return Topic(tuple(questions), tuple(answers), truth)


PRODUCTS: tuple[Doc, ...] = (
    Doc("trailwalker", "TrailWalker Hiking Shoes",
        "TrailWalker Hiking Shoes: waterproof full-grain leather upper with a breathable membrane and a Vibram "
        "Megagrip sole. The TrailWalker costs $110. Sizes 6 to 13 for men and women, half sizes from 7 to 11. "
        "A pair weighs 1.1 kg. Colors: brown and slate grey.", 110, (
            T(["How much do the TrailWalker shoes cost?", "What is the price of the TrailWalker Hiking Shoes?",
               "how much are trailwalkers"],
              ["The TrailWalker Hiking Shoes cost $110.", "The TrailWalker costs $110 a pair.",
               "TrailWalker Hiking Shoes are $110."],
              "The TrailWalker Hiking Shoes cost $110."),
            T(["What sizes does the TrailWalker come in?", "Do TrailWalker shoes come in half sizes?",
               "Is the TrailWalker available in size 13?"],
              ["The TrailWalker comes in sizes 6 to 13 for men and women, with half sizes from 7 to 11.",
               "TrailWalker sizes run from 6 to 13, and half sizes are available from 7 to 11."],
              "The TrailWalker comes in sizes 6 to 13, with half sizes from 7 to 11."),
            T(["Are the TrailWalker shoes waterproof?", "Can I wear the TrailWalker in the rain?"],
              ["Yes, the TrailWalker has a waterproof full-grain leather upper with a breathable membrane.",
               "Yes. The TrailWalker Hiking Shoes are waterproof: a leather upper with a breathable membrane."],
              "Yes, the TrailWalker has a waterproof leather upper with a breathable membrane."),
            T(["How heavy are the TrailWalker shoes?", "What colors does the TrailWalker come in?"],
              ["A pair of TrailWalker Hiking Shoes weighs 1.1 kg, and they come in brown and slate grey.",
               "The TrailWalker weighs 1.1 kg per pair; colors are brown and slate grey."]),
        )),
    Doc("alpine", "Alpine Explorer Tent",
        "Alpine Explorer Tent: a three-season double-wall tent that sleeps 4 people. It weighs 3.2 kg with "
        "aluminium poles, has two doors and two vestibules, and packs to 55 x 20 cm. The Alpine Explorer "
        "Tent costs $350.", 350, (
            T(["How many people fit in the Alpine Explorer Tent?", "Does the Alpine Explorer sleep four?",
               "how big is the alpine explorer tent"],
              ["The Alpine Explorer Tent sleeps 4 people.",
               "The Alpine Explorer is a double-wall tent that sleeps 4 people, with two doors and two vestibules."],
              "The Alpine Explorer Tent sleeps 4 people."),
            T(["How much is the Alpine Explorer Tent?", "What does the Alpine Explorer Tent cost?"],
              ["The Alpine Explorer Tent costs $350.", "The Alpine Explorer is $350."],
              "The Alpine Explorer Tent costs $350."),
            T(["How heavy is the Alpine Explorer Tent?", "What does the Alpine Explorer weigh when packed?"],
              ["The Alpine Explorer Tent weighs 3.2 kg with its aluminium poles and packs to 55 x 20 cm.",
               "It weighs 3.2 kg and packs to 55 x 20 cm."],
              "The Alpine Explorer Tent weighs 3.2 kg."),
            T(["Can I use the Alpine Explorer in winter?", "Is the Alpine Explorer a four-season tent?"],
              ["The Alpine Explorer is a three-season tent, so it is not made for winter camping.",
               "No, the Alpine Explorer Tent is a three-season double-wall tent."]),
        )),
    Doc("skylite", "SkyLite Ultralight Tent",
        "SkyLite Ultralight Tent: a single-wall tent for 2 people that weighs 1.1 kg. It pitches with two "
        "trekking poles instead of tent poles. Fully seam-taped silnylon. The SkyLite costs $420.", 420, (
            T(["How much does the SkyLite tent weigh?", "Is the SkyLite Ultralight Tent light?"],
              ["The SkyLite Ultralight Tent weighs 1.1 kg.",
               "Yes, the SkyLite is an ultralight single-wall tent that weighs 1.1 kg."],
              "The SkyLite Ultralight Tent weighs 1.1 kg."),
            T(["Do I need poles for the SkyLite?", "How do you pitch the SkyLite Ultralight Tent?"],
              ["The SkyLite pitches with two trekking poles instead of tent poles.",
               "You pitch the SkyLite Ultralight Tent with two trekking poles, so it needs no tent poles."],
              "The SkyLite pitches with two trekking poles instead of tent poles."),
            T(["What is the price of the SkyLite tent?", "How much is the SkyLite Ultralight?"],
              ["The SkyLite Ultralight Tent costs $420.", "The SkyLite costs $420."],
              "The SkyLite Ultralight Tent costs $420."),
        )),
    Doc("summit", "Summit Pro Backpack",
        "Summit Pro Backpack: a 55 liter trekking pack with an adjustable torso length from 40 to 52 cm, "
        "hip-belt pockets and an included rain cover. It weighs 1.6 kg. The Summit Pro costs $189.", 189, (
            T(["What is the capacity of the Summit Pro Backpack?", "How many liters is the Summit Pro?"],
              ["The Summit Pro Backpack holds 55 liters.",
               "The Summit Pro is a 55 liter trekking pack with hip-belt pockets."],
              "The Summit Pro Backpack has a capacity of 55 liters."),
            T(["Does the Summit Pro come with a rain cover?", "Is a rain cover included with the Summit Pro?"],
              ["Yes, the Summit Pro Backpack includes a rain cover.",
               "Yes, a rain cover is included with the Summit Pro."],
              "Yes, the Summit Pro Backpack comes with a rain cover."),
            T(["Will the Summit Pro fit my torso?", "Is the Summit Pro torso length adjustable?"],
              ["The Summit Pro has an adjustable torso length from 40 to 52 cm.",
               "Yes, the torso length of the Summit Pro Backpack adjusts from 40 to 52 cm."]),
            T(["How much does the Summit Pro Backpack cost?"],
              ["The Summit Pro Backpack costs $189."], "The Summit Pro Backpack costs $189."),
        )),
    Doc("daytripper", "DayTripper Pack",
        "DayTripper Pack: a 22 liter daypack with a hydration sleeve, a padded laptop pocket for screens up "
        "to 15 inches and a water-resistant base. The DayTripper costs $75.", 75, (
            T(["Does the DayTripper have a laptop pocket?", "Will a 15 inch laptop fit in the DayTripper Pack?"],
              ["Yes, the DayTripper Pack has a padded laptop pocket for screens up to 15 inches.",
               "Yes, a 15 inch laptop fits in the padded laptop pocket of the DayTripper."],
              "Yes, the DayTripper has a padded laptop pocket for screens up to 15 inches."),
            T(["How big is the DayTripper Pack?", "What does the DayTripper cost?"],
              ["The DayTripper Pack is a 22 liter daypack and costs $75.",
               "The DayTripper holds 22 liters, has a hydration sleeve, and costs $75."]),
        )),
    Doc("arctic", "Arctic Down Sleeping Bag",
        "Arctic Down Sleeping Bag: 800-fill responsibly sourced down, comfort rating -7 °C and limit rating "
        "-15 °C. It weighs 1.2 kg and comes in regular and long lengths. The Arctic Down costs $260.", 260, (
            T(["How warm is the Arctic Down Sleeping Bag?", "What is the temperature rating of the Arctic Down bag?"],
              ["The Arctic Down Sleeping Bag has a comfort rating of -7 °C and a limit rating of -15 °C.",
               "Its comfort rating is -7 °C and its limit rating is -15 °C."],
              "The Arctic Down Sleeping Bag has a comfort rating of -7 °C and a limit rating of -15 °C."),
            T(["Does the Arctic Down come in long?", "Is there a long version of the Arctic Down Sleeping Bag?"],
              ["Yes, the Arctic Down Sleeping Bag comes in regular and long lengths.",
               "Yes, the Arctic Down comes in both regular and long lengths."],
              "Yes, the Arctic Down comes in regular and long lengths."),
            T(["How much is the Arctic Down Sleeping Bag?", "What does the Arctic Down weigh?"],
              ["The Arctic Down Sleeping Bag costs $260 and weighs 1.2 kg.",
               "The Arctic Down weighs 1.2 kg; it costs $260."]),
        )),
    Doc("cozynights", "CozyNights Synthetic Sleeping Bag",
        "CozyNights Synthetic Sleeping Bag: synthetic insulation that stays warm when damp, comfort rating "
        "4 °C, machine washable. It weighs 1.4 kg. The CozyNights costs $95.", 95, (
            T(["Is the CozyNights bag good for summer camping?", "What is the comfort rating of the CozyNights?"],
              ["The CozyNights Synthetic Sleeping Bag has a comfort rating of 4 °C, so it suits summer camping.",
               "The CozyNights has a comfort rating of 4 °C and its synthetic insulation stays warm when damp."],
              "The CozyNights has a comfort rating of 4 °C."),
            T(["Can I wash the CozyNights sleeping bag?", "How much is the CozyNights bag?"],
              ["Yes, the CozyNights Synthetic Sleeping Bag is machine washable. It costs $95.",
               "The CozyNights is machine washable and costs $95."]),
        )),
    Doc("stormshield", "StormShield Rain Jacket",
        "StormShield Rain Jacket: a 3-layer waterproof breathable membrane with a 20,000 mm waterproof "
        "rating, pit zips and a helmet-compatible hood. Sizes XS to XXL. The StormShield costs $149.", 149, (
            T(["How waterproof is the StormShield jacket?", "What is the waterproof rating of the StormShield?"],
              ["The StormShield Rain Jacket has a 20,000 mm waterproof rating from its 3-layer membrane.",
               "The StormShield has a 20,000 mm waterproof rating and a breathable 3-layer membrane."],
              "The StormShield Rain Jacket has a 20,000 mm waterproof rating."),
            T(["What sizes does the StormShield come in?", "Is the StormShield Rain Jacket available in XXL?"],
              ["The StormShield Rain Jacket comes in sizes XS to XXL.",
               "Yes, the StormShield comes in sizes XS to XXL."],
              "The StormShield Rain Jacket comes in sizes XS to XXL."),
            T(["How much is the StormShield jacket?", "Does the StormShield hood fit over a helmet?"],
              ["The StormShield Rain Jacket costs $149 and has a helmet-compatible hood.",
               "The StormShield has a helmet-compatible hood and pit zips; it costs $149."]),
        )),
    Doc("thermocore", "ThermoCore Fleece",
        "ThermoCore Fleece: a midweight fleece jacket made from recycled polyester, with a full zip and two "
        "hand pockets. Sizes XS to XXL. The ThermoCore costs $69.", 69, (
            T(["What is the ThermoCore Fleece made of?", "Is the ThermoCore fleece recycled?"],
              ["The ThermoCore Fleece is made from recycled polyester.",
               "Yes, the ThermoCore is a midweight fleece jacket made from recycled polyester."],
              "The ThermoCore Fleece is made from recycled polyester."),
            T(["How much is the ThermoCore Fleece?", "What sizes does the ThermoCore come in?"],
              ["The ThermoCore Fleece costs $69 and comes in sizes XS to XXL.",
               "The ThermoCore comes in sizes XS to XXL; it costs $69."]),
        )),
    Doc("ridgeline", "RidgeLine Trekking Poles",
        "RidgeLine Trekking Poles: a pair of aluminium poles adjustable from 100 to 135 cm with cork grips "
        "and flick locks. The pair weighs 480 g. RidgeLine poles cost $59 a pair.", 59, (
            T(["How long do the RidgeLine poles adjust?", "Are the RidgeLine Trekking Poles adjustable?"],
              ["The RidgeLine Trekking Poles adjust from 100 to 135 cm with flick locks.",
               "Yes, the RidgeLine poles are adjustable from 100 to 135 cm."],
              "The RidgeLine Trekking Poles adjust from 100 to 135 cm."),
            T(["How much are the RidgeLine Trekking Poles?", "Are RidgeLine poles sold as a pair?"],
              ["RidgeLine Trekking Poles cost $59 a pair.", "Yes, the RidgeLine poles are sold as a pair for $59."],
              "RidgeLine Trekking Poles cost $59 a pair."),
        )),
    Doc("campchef", "CampChef Stove",
        "CampChef Stove: an 85 g canister stove for isobutane gas canisters. It boils 1 liter of water in "
        "3.5 minutes and has a piezo igniter. The CampChef costs $49. Gas canisters are sold separately "
        "and cannot be shipped by express.", 49, (
            T(["How fast does the CampChef Stove boil water?", "How long does the CampChef take to boil a liter?"],
              ["The CampChef Stove boils 1 liter of water in 3.5 minutes.",
               "It boils 1 liter of water in about 3.5 minutes."],
              "The CampChef Stove boils 1 liter of water in 3.5 minutes."),
            T(["Does the CampChef come with gas?", "Can you ship gas canisters for the CampChef by express?"],
              ["Gas canisters for the CampChef Stove are sold separately and cannot be shipped by express.",
               "No, gas canisters are sold separately, and they cannot be shipped by express."],
              "Gas canisters are sold separately and cannot be shipped by express."),
            T(["How much is the CampChef Stove?"], ["The CampChef Stove costs $49."],
              "The CampChef Stove costs $49."),
        )),
    Doc("aquapure", "AquaPure Water Filter",
        "AquaPure Water Filter: a 0.1 micron hollow-fiber squeeze filter that filters up to 1,500 liters "
        "before the cartridge needs replacing. The AquaPure costs $39; replacement cartridges cost $19.", 39, (
            T(["How many liters does the AquaPure filter last?", "When do I replace the AquaPure cartridge?"],
              ["The AquaPure Water Filter filters up to 1,500 liters before the cartridge needs replacing.",
               "Replace the AquaPure cartridge after 1,500 liters; replacement cartridges cost $19."],
              "The AquaPure filters up to 1,500 liters before the cartridge needs replacing."),
            T(["How much is the AquaPure Water Filter?", "What does the AquaPure filter out?"],
              ["The AquaPure Water Filter costs $39 and uses a 0.1 micron hollow-fiber filter.",
               "The AquaPure is a 0.1 micron hollow-fiber squeeze filter; it costs $39."]),
        )),
    Doc("trailblaze", "TrailBlaze Headlamp",
        "TrailBlaze Headlamp: 350 lumens, a red night mode, USB-C rechargeable battery that lasts 40 hours "
        "on low, IPX7 waterproof. The TrailBlaze costs $35.", 35, (
            T(["How bright is the TrailBlaze Headlamp?", "How many lumens is the TrailBlaze?"],
              ["The TrailBlaze Headlamp gives 350 lumens and has a red night mode.",
               "The TrailBlaze is 350 lumens."],
              "The TrailBlaze Headlamp is 350 lumens."),
            T(["How long does the TrailBlaze battery last?", "Is the TrailBlaze rechargeable?"],
              ["The TrailBlaze has a USB-C rechargeable battery that lasts 40 hours on low.",
               "Yes, the TrailBlaze Headlamp is USB-C rechargeable, and the battery lasts 40 hours on low."],
              "The TrailBlaze battery is USB-C rechargeable and lasts 40 hours on low."),
            T(["Is the TrailBlaze waterproof?", "How much is the TrailBlaze Headlamp?"],
              ["The TrailBlaze Headlamp is IPX7 waterproof and costs $35.",
               "Yes, the TrailBlaze is IPX7 waterproof; it costs $35."]),
        )),
)

POLICIES: tuple[Doc, ...] = (
    Doc("returns", "Returns policy",
        "Returns: unused items can be returned within 60 days with the receipt for a full refund. Worn "
        "footwear can be returned within 30 days only if it is defective. Refunds go back to the original "
        "payment method within 5 to 7 business days. Trail Club members get a free return label.", None, (
            T(["What is your return policy?", "Can I return something I bought last month?",
               "how many days do i have to return an item"],
              ["You can return unused items within 60 days with the receipt for a full refund.",
               "Unused items can be returned within 60 days with the receipt, and the refund goes back to the "
               "original payment method within 5 to 7 business days."],
              "Unused items can be returned within 60 days with the receipt for a full refund."),
            T(["Can I return hiking shoes I already wore?", "I wore my boots once, can I still return them?"],
              ["Worn footwear can be returned within 30 days only if it is defective.",
               "Only if they are defective: worn footwear can be returned within 30 days when it is defective."],
              "Worn footwear can be returned within 30 days only if it is defective."),
            T(["How long does a refund take?", "When will I get my refund?"],
              ["Refunds go back to the original payment method within 5 to 7 business days.",
               "Your refund goes back to the original payment method within 5 to 7 business days."],
              "Refunds go back to the original payment method within 5 to 7 business days."),
        )),
    Doc("shipping", "Shipping",
        "Shipping: standard shipping takes 3 to 5 business days and is free on orders over $75; otherwise "
        "it costs $6.95. Express shipping takes 1 to 2 business days and costs $15. We ship to the United "
        "States and Canada; shipping to Canada costs a flat $20 and takes 5 to 10 business days.", None, (
            T(["Is shipping free?", "How much is shipping?", "do you have free shipping"],
              ["Standard shipping is free on orders over $75; otherwise it costs $6.95.",
               "Shipping is free on orders over $75. Below that, standard shipping costs $6.95."],
              "Standard shipping is free on orders over $75; otherwise it costs $6.95."),
            T(["Do you ship to Canada?", "How long does shipping to Canada take?"],
              ["Yes, we ship to Canada for a flat $20, and it takes 5 to 10 business days.",
               "Yes. Shipping to Canada costs a flat $20 and takes 5 to 10 business days."],
              "Yes, shipping to Canada costs a flat $20 and takes 5 to 10 business days."),
            T(["How fast is express shipping?", "Can I get my order in two days?"],
              ["Express shipping takes 1 to 2 business days and costs $15.",
               "Yes, express shipping takes 1 to 2 business days and costs $15."],
              "Express shipping takes 1 to 2 business days and costs $15."),
        )),
    Doc("exchanges", "Exchanges",
        "Exchanges: size exchanges are free within 60 days. Start an exchange from your order page; we ship "
        "the new size as soon as the original item is scanned by the carrier.", None, (
            T(["Can I exchange my jacket for a different size?", "How do size exchanges work?"],
              ["Size exchanges are free within 60 days: start an exchange from your order page.",
               "Yes, size exchanges are free within 60 days, and we ship the new size once the original item "
               "is scanned by the carrier."],
              "Size exchanges are free within 60 days; start one from your order page."),
        )),
    Doc("warranty", "Contoso Guarantee",
        "Contoso Guarantee: tents, backpacks and sleeping bags have a 2-year warranty against manufacturing "
        "defects. Send a photo of the defect and your order number to support to start a warranty claim.",
        None, (
            T(["What warranty do your tents have?", "Is my backpack covered by a warranty?"],
              ["Tents, backpacks and sleeping bags have a 2-year warranty against manufacturing defects.",
               "Yes, backpacks have a 2-year warranty against manufacturing defects."],
              "Tents, backpacks and sleeping bags have a 2-year warranty against manufacturing defects."),
            T(["How do I make a warranty claim?", "My tent pole broke, what do I do?"],
              ["Send a photo of the defect and your order number to support to start a warranty claim.",
               "Start a warranty claim by sending support a photo of the defect and your order number."],
              "Send a photo of the defect and your order number to support to start a warranty claim."),
        )),
    Doc("pricematch", "Price match",
        "Price match: we match a lower price from an authorized retailer within 14 days of your purchase. "
        "Clearance items and marketplace sellers are excluded.", None, (
            T(["Do you price match?", "I found the tent cheaper elsewhere, will you match it?"],
              ["Yes, we match a lower price from an authorized retailer within 14 days of your purchase.",
               "We price match an authorized retailer within 14 days of your purchase; clearance items and "
               "marketplace sellers are excluded."],
              "We match a lower price from an authorized retailer within 14 days of purchase."),
        )),
    Doc("pickup", "Store pickup",
        "Store pickup: order online and pick up in 2 hours at our Seattle, Denver and Portland stores. "
        "Bring the order confirmation and a photo ID.", None, (
            T(["Can I pick up my order in a store?", "Which stores offer pickup?"],
              ["Yes, order online and pick up in 2 hours at our Seattle, Denver and Portland stores.",
               "Store pickup is available in 2 hours at the Seattle, Denver and Portland stores."],
              "Order online and pick up in 2 hours at the Seattle, Denver and Portland stores."),
        )),
    Doc("trailclub", "Trail Club membership",
        "Trail Club: membership is free. Members earn 10% back in rewards on full-price items and get free "
        "return labels.", None, (
            T(["What is the Trail Club?", "Is the membership free?"],
              ["Trail Club membership is free, and members earn 10% back in rewards on full-price items.",
               "The Trail Club is free to join; members earn 10% back in rewards and get free return labels."],
              "Trail Club membership is free and earns 10% back in rewards on full-price items."),
        )),
)
DOCS = PRODUCTS + POLICIES
TOPIC_WEIGHTS = {"product": 0.7, "policy": 0.3}

FALLBACKS = (
    "I'm sorry, I couldn't find that in our help center. Please contact our support team at 1-800-555-0199.",
    "I am not able to answer that right now. A support agent can help you by chat.",
)

# Drifted answers (the regression): fluent and confident, but not supported by the retrieved context.
DRIFTS = (
    "Great news: the {short} is on sale for ${wrong} this week only, and every order includes a lifetime "
    "replacement plan and free overnight delivery worldwide.",
    "Most hikers we talk to prefer the {other}, which is handmade in Norway, carries a 10-year guarantee "
    "and comes with a complimentary guided trip.",
    "Our winter sale starts Friday with 40% off snowshoes, ski skins and avalanche beacons. Sign up for "
    "the newsletter to get early access.",
    "It really depends on your adventure! Many customers love exploring national parks in autumn, when "
    "crowds are smaller and the foliage is spectacular.",
    "Absolutely. Every item we sell is fireproof, rated for Everest expeditions and backed by a "
    "no-questions-asked lifetime refund.",
    "The {short} was redesigned this season with a titanium frame and solar charging, so it now retails "
    "for ${wrong} including a carbon carry case.",
)
OTHER_GEAR = ("Glacier Peak Snowboard", "Nordic Trail Kayak", "Everest Carbon Ice Axe", "Yukon Expedition Parka")
FOLLOW_UPS = ("and what about shipping?", "thanks! one more question", "ok great")


# --- generation -----------------------------------------------------------------------------------

@dataclass
class Request:
    deployment: str
    time: datetime
    question: str
    answer: str
    context: str
    ground_truth: str | None
    chat_history: list[dict[str, Any]]
    kind: str                       # good | fallback | drift
    has_output: bool = True
    latency: float = 2.0
    solo: bool = False              # written on a line of its own (its time is the line's time)


def pick_topic(rng: random.Random) -> tuple[Doc, Topic]:
    pool = PRODUCTS if rng.random() < TOPIC_WEIGHTS["product"] else POLICIES
    doc = rng.choice(pool)
    return doc, rng.choice(doc.topics)


def context_for(rng: random.Random, doc: Doc) -> str:
    """The retriever's top paragraphs: the right document and one or two neighbours, shuffled."""
    others = [d for d in DOCS if d.key != doc.key]
    picked = [doc, *rng.sample(others, rng.choice((1, 2)))]
    rng.shuffle(picked)
    return "\n\n".join(d.text for d in picked)


def short_name(doc: Doc) -> str:
    return doc.title.split()[0] if doc.price is not None else "order"


def drift_answer(rng: random.Random, doc: Doc) -> str:
    template = rng.choice(DRIFTS)
    price = doc.price or 80
    wrong = rng.choice([p for p in (price // 2, price + 40, int(price * 0.6), price * 2) if p != price])
    return template.format(short=short_name(doc), wrong=wrong, other=rng.choice(OTHER_GEAR))


def make_request(rng: random.Random, deployment: str, when: datetime) -> Request:
    doc, topic = pick_topic(rng)
    question = rng.choice(topic.questions)
    history: list[dict[str, Any]] = []
    if rng.random() < 0.15:
        _, prior = pick_topic(rng)
        history = [{"inputs": {"question": rng.choice(prior.questions)},
                    "outputs": {"answer": rng.choice(prior.answers)}}]
        if rng.random() < 0.3:
            question = f"{rng.choice(FOLLOW_UPS)} - {question[0].lower()}{question[1:]}"
    truth = topic.truth if topic.truth and rng.random() < GROUND_TRUTH_SHARE / 0.75 else None
    regressed = (deployment, when.replace(hour=0, minute=0, second=0, microsecond=0)) == REGRESSION
    roll = rng.random()
    if regressed and roll < DRIFT_SHARE:
        kind, answer = "drift", drift_answer(rng, doc)
    elif roll > 1 - FALLBACK_SHARE:
        kind, answer = "fallback", rng.choice(FALLBACKS)
    else:
        kind, answer = "good", rng.choice(topic.answers)
    return Request(deployment, when, question, answer, context_for(rng, doc), truth, history, kind,
                   latency=round(rng.uniform(1.2, 7.5), 3))


def request_times(rng: random.Random, day: datetime, count: int) -> list[datetime]:
    hours = rng.choices(range(24), weights=HOUR_WEIGHTS, k=count)
    return sorted(day + timedelta(hours=h, seconds=rng.randrange(3600), milliseconds=rng.randrange(1000))
                  for h in hours)


def hexid(rng: random.Random, bits: int = 128) -> str:
    return f"{rng.getrandbits(bits):0{bits // 4}x}"


def uuid_like(rng: random.Random) -> str:
    h = hexid(rng)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def envelope(rng: random.Random, collection: str, deployment: str, correlation: str, moment: datetime,
             version: str, rows: list[dict[str, Any]] | None, dataref: str | None = None) -> dict[str, Any]:
    payload = json.dumps(rows, separators=(",", ":")) if rows is not None else ""
    env: dict[str, Any] = {
        "specversion": "1.0", "id": uuid_like(rng), "source": ARM + deployment,
        "type": f"azureml.inference.{collection}", "datacontenttype": "application/json", "time": stamp(moment),
    }
    if rows is not None:
        env["data"] = rows
    else:
        env["dataref"] = dataref
    size = max(1, len(payload))
    env.update({"contentrange": f"bytes 0-{size - 1}/{size}", "correlationid": correlation,
                "xrequestid": correlation, "modelversion": version,
                "collectdatatype": "pandas.core.frame.DataFrame", "agent": "azureml-ai-monitoring/0.1.0b4"})
    return env


def hour_folder(deployment: str, collection: str, moment: datetime) -> str:
    return f"modelDataCollector/{ENDPOINT}/{deployment}/{collection}/{moment:%Y/%m/%d/%H}"


def build(rng: random.Random) -> tuple[dict[str, list[str]], dict[str, bytes], dict[str, Any]]:
    """Lines per blob path, extra blobs (dataref), and the manifest."""
    files: dict[str, list[str]] = defaultdict(list)
    extra: dict[str, bytes] = {}
    instance = {d: hexid(rng) for d in VOLUME}
    stats: dict[str, dict[str, dict[str, int]]] = {}
    totals = defaultdict(int)
    lines_out: list[tuple[datetime, str, str]] = []   # (time, path, line) sorted later per file
    dataref_done = False
    for day in DAYS:
        for deployment, volume in VOLUME.items():
            version = MODEL_VERSION[deployment](day)
            requests = [make_request(rng, deployment, t) for t in request_times(rng, day, volume)]
            # A few requests at the end of an hour whose output lands in the next hour's folder.
            for index in rng.sample(range(len(requests)), 3):
                r = requests[index]
                r.time = r.time.replace(minute=59, second=57, microsecond=rng.randrange(1000) * 1000)
                r.latency, r.solo = 5.5, True
            if day == DAYS[-1] and deployment == "blue":
                last = requests[-1]      # its output lands in the 2026-11-21 folder
                last.time, last.latency, last.solo = day + timedelta(hours=23, minutes=59, seconds=58), 4.0, True
            requests.sort(key=lambda r: r.time)
            # Timeouts: inputs whose output never came.
            for r in rng.sample(requests, 2):
                r.has_output = False
            day_stats = {"requests": len(requests), "records": 0, "good": 0, "fallback": 0, "drift": 0,
                         "ground_truth": 0, "no_output": 0, "batched_lines": 0}
            index = 0
            while index < len(requests):
                size = rng.choice((2, 3)) if rng.random() < BATCH_SHARE else 1
                group = requests[index:index + size]
                index += size
                # MDC batches only requests that reached the collector together: skip mixed outcomes,
                # and keep the hour-crossing requests on lines of their own.
                if len(group) > 1 and (len({r.has_output for r in group}) > 1 or any(r.solo for r in group)):
                    group, index = group[:1], index - len(group) + 1
                correlation = uuid_like(rng)[:23]
                first = group[0]
                inputs = [{"question": r.question, "chat_history": r.chat_history,
                           **({"ground_truth": r.ground_truth} if r.ground_truth else {})} for r in group]
                in_env = envelope(rng, "model_inputs", deployment, correlation, first.time, version, inputs)
                in_path = hour_folder(deployment, "model_inputs", first.time)
                lines_out.append((first.time, in_path, json.dumps(in_env, ensure_ascii=False,
                                                                   separators=(",", ":"))))
                day_stats["batched_lines"] += int(len(group) > 1)
                if not first.has_output:
                    day_stats["no_output"] += len(group)
                    continue
                out_time = first.time + timedelta(seconds=max(r.latency for r in group))
                out_path = hour_folder(deployment, "model_outputs", out_time)
                rows = [{"answer": r.answer, "context": r.context} for r in group]
                if not dataref_done and deployment == "green" and day == DAYS[1] and len(group) > 1:
                    # A payload over MDC's inline limit: the rows live in a blob of their own.
                    ref = f"{out_path}/dataref-{correlation}.json"
                    extra[ref] = json.dumps(rows, ensure_ascii=False, indent=1).encode("utf-8") + b"\n"
                    out_env = envelope(rng, "model_outputs", deployment, correlation, out_time, version, None, ref)
                    dataref_done = True
                else:
                    out_env = envelope(rng, "model_outputs", deployment, correlation, out_time, version, rows)
                lines_out.append((out_time, out_path, json.dumps(out_env, ensure_ascii=False,
                                                                  separators=(",", ":"))))
                for r in group:
                    day_stats["records"] += 1
                    day_stats[r.kind] += 1
                    day_stats["ground_truth"] += int(r.ground_truth is not None)
            stats.setdefault(f"{day:%Y-%m-%d}", {})[deployment] = day_stats
            for key, value in day_stats.items():
                totals[key] += value
    lines_out.sort(key=lambda item: item[0])
    for _, path, line in lines_out:
        files[path].append(line)
    quarantined = add_malformed(rng, files)
    named: dict[str, list[str]] = {}
    for path, lines in files.items():
        deployment = path.split("/")[2]
        named[f"{path}/{instance[deployment]}000000.jsonl"] = lines
    if not dataref_done:
        raise SystemExit("no batched green line on day 2 to carry the dataref payload: change the seed")
    manifest = {
        "endpoint": ENDPOINT, "seed": SEED, "days": [f"{d:%Y-%m-%d}" for d in DAYS],
        "regression": {"deployment": REGRESSION[0], "day": f"{REGRESSION[1]:%Y-%m-%d}",
                       "model_version": MODEL_VERSION[REGRESSION[0]](REGRESSION[1])},
        "totals": {**dict(totals), "quarantined": quarantined, "unmatched": totals["no_output"],
                   "blobs": len(named), "dataref_blobs": len(extra)},
        "per_day": stats,
    }
    return named, extra, manifest


def add_malformed(rng: random.Random, files: dict[str, list[str]]) -> int:
    """Lines a real collector occasionally leaves behind: a truncated write, a log line, a bare array."""
    paths = sorted(files)
    inputs = [p for p in paths if "/model_inputs/" in p]
    outputs = [p for p in paths if "/model_outputs/" in p]
    # A partial write the collector retried: half a line, then the whole line again.
    retried = rng.choice(outputs)
    line = rng.randrange(len(files[retried]))
    files[retried].insert(line, files[retried][line][: len(files[retried][line]) // 2])
    bad = [
        (rng.choice(inputs), '{"level":"warning","message":"collector buffer flushed after 3 retries"}'),
        (rng.choice(inputs), "[]"),
    ]
    for path, text in bad:
        lines = files[path]
        lines.insert(rng.randrange(len(lines) + 1), text)
    return len(bad) + 1


def main() -> None:
    rng = random.Random(SEED)
    files, extra, manifest = build(rng)
    target = OUT / "modelDataCollector" / ENDPOINT
    if target.exists():
        shutil.rmtree(target)
    for path, lines in sorted(files.items()):
        out = OUT / path
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    for path, data in sorted(extra.items()):
        (OUT / path).write_bytes(data)
    (ROOT / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    size = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    t = manifest["totals"]
    print(f"wrote {t['blobs']} JSONL blobs + {t['dataref_blobs']} dataref blob ({size / 1024:.0f} KiB) under {OUT}: "
          f"{t['requests']} requests, {t['records']} with an output, {t['no_output']} without, "
          f"{t['batched_lines']} batched lines, {t['quarantined']} malformed lines")


if __name__ == "__main__":
    main()
