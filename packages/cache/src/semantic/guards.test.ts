import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { guardedMatch, negationCount, numberSignature } from "./guards.js";

const ok = (a: string, b: string) => assert.deepEqual(guardedMatch(a, b), { ok: true }, `${a} <-> ${b}`);
const refused = (a: string, b: string, reason: "negation" | "numbers") =>
  assert.deepEqual(guardedMatch(a, b), { ok: false, reason }, `${a} <-> ${b}`);

describe("guardedMatch: negation", () => {
  it("refuses texts that differ in negation", () => {
    refused("The sky is blue", "The sky is not blue", "negation");
    refused("I can log in", "I can't log in", "negation");
    refused("I can log in", "I can’t log in", "negation"); // curly apostrophe
    refused("I can log in", "I cant log in", "negation"); // no apostrophe
    refused("I have received my card", "I have never received my card", "negation");
    refused("Is there a fee?", "Is there no fee?", "negation");
    refused("Transfer with a fee", "Transfer without a fee", "negation");
    refused("The app works", "The app doesn't work", "negation");
    refused("Somebody called me", "Nobody called me", "negation");
    refused("I am able to pay", "I am unable to pay", "negation");
  });

  it("accepts paraphrases that keep their negation", () => {
    ok("I cannot log in", "I can't log in");
    ok("I can not log in to my account", "Logging in to my account isn't possible");
    ok("How do I reset my password?", "How can I change my password?");
    ok("My card has not arrived", "My card still hasn't arrived");
  });

  it("can be switched off per task", () => {
    assert.deepEqual(guardedMatch("The sky is blue", "The sky is not blue", { allowNegationMismatch: true }), { ok: true });
  });

  it("counts cues", () => {
    assert.equal(negationCount("no, I don't want it and never did"), 3);
    assert.equal(negationCount("Nothing here"), 1);
    assert.equal(negationCount("Notice the knot"), 0);
  });
});

describe("guardedMatch: numbers", () => {
  it("refuses texts that differ in their numbers", () => {
    refused("What is 2+2?", "What is 2+3?", "numbers");
    refused("What is 2 + 2?", "What is 2 * 2?", "numbers");
    refused("What is 10-3?", "What is 3-10?", "numbers");
    refused("It costs $10", "It costs $100", "numbers");
    refused("It costs $10", "It costs €10", "numbers");
    refused("It costs 10 dollars", "It costs 10 euros", "numbers");
    refused("Meeting on 2024-01-05", "Meeting on 2024-01-06", "numbers");
    refused("Meeting on January 5", "Meeting on February 5", "numbers");
    refused("Meeting on March 3rd", "Meeting on March 4th", "numbers");
    refused("The refund takes 2 days", "The refund takes 2 weeks", "numbers");
    refused("The refund takes two days", "The refund takes three days", "numbers");
    refused("Rates rose 5%", "Rates rose 5 points", "numbers");
    refused("I was charged twice", "I was charged twice for 2 items", "numbers");
    refused("Revenue of 10k", "Revenue of 10", "numbers");
    refused("at 5pm", "at 5am", "numbers");
    refused("born in 1868", "born in 1886", "numbers");
    refused("Give me twenty five", "Give me 24", "numbers");
  });

  it("accepts the same numbers written differently", () => {
    ok("It costs $10", "The price is 10 dollars");
    ok("It costs $10.00", "It costs $10");
    ok("About 1,000 people", "About 1000 people");
    ok("I need two cards", "Can I get 2 cards?");
    ok("twenty five euros", "25 EUR");
    ok("Two hundred dollars", "$200");
    ok("10%", "10 percent");
    ok("Meeting on 2024-01-05", "Meeting on January 5, 2024");
    ok("the 1st of May", "May 1");
    ok("Why was my card declined?", "My card got declined, why?");
    ok("Can I have one more card?", "Can I have another card?"); // "one" is not counted (mostly a pronoun)
    ok("What is 2+2?", "what's 2 + 2");
  });

  it("does not mistake ordinary words for numbers or months", () => {
    assert.equal(numberSignature("You may want to march on"), "");
    assert.equal(numberSignature("constructor toString valueOf"), "");
    assert.equal(numberSignature("The second option, often chosen"), "");
    ok("I may need help", "I might need help");
  });

  it("can be switched off per task", () => {
    assert.deepEqual(guardedMatch("What is 2+2?", "What is 2+3?", { allowNumberMismatch: true }), { ok: true });
    // Negation is still checked when only numbers are allowed.
    assert.deepEqual(guardedMatch("It is 5", "It is not 6", { allowNumberMismatch: true }), { ok: false, reason: "negation" });
  });
});
