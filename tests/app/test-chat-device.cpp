/* ChatSession's device choice on the tiny real model: the CPU by default (no note); a GPU asked for
 * (cuda, automatic, or a GPU index that does not exist) that cannot serve still replies, on the CPU,
 * with a note saying why, and the reply is the very one the CPU gives unasked.
 *
 * Non-obvious choice: where a GPU does serve (a CUDA build on a GPU machine) the cuda/automatic cases
 * check only that the backend names a CUDA device; the impossible GPU index must fall back everywhere.
 */
#include <gtest/gtest.h>

#include "hearth/session/chat-session.h"
#include "test-util.h"

using namespace hearth;
using namespace hearth::session;
using Device = InferenceOptions::Device;

namespace {

std::unique_ptr<ChatSession> openTiny(Device device, int gpuIndex = 0) {
  ChatModelOptions o;
  o.modelPath = test::testdata("models/llama-2-tiny-random.gguf");
  o.threads = 2;
  o.device = device;
  o.gpuIndex = gpuIndex;
  auto s = ChatSession::open(o);
  EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().to_string());
  return s ? std::move(*s) : nullptr;
}

ChatReply replyOf(ChatSession& s) {
  ChatSettings settings;
  settings.maxTokens = 6;
  settings.nCtx = 128;
  settings.sampling.seed = 3;
  auto r = s.reply({{"user", "Hello there"}}, settings);
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().to_string());
  return r ? std::move(*r) : ChatReply{};
}

}  // namespace

TEST(ChatDevice, CpuIsTheDefaultAndCarriesNoNote) {
  EXPECT_EQ(ChatModelOptions{}.device, Device::cpu);
  auto s = openTiny(Device::cpu);
  ASSERT_TRUE(s);
  ChatReply r = replyOf(*s);
  EXPECT_GT(r.stats.n_generated, 0);
  EXPECT_EQ(r.backend, "cpu");
  EXPECT_EQ(r.backendNote, "");
}

TEST(ChatDevice, AGpuThatCannotServeFallsBackToTheCpuWithAReason) {
  auto cpu = openTiny(Device::cpu);
  ASSERT_TRUE(cpu);
  ChatReply expected = replyOf(*cpu);
  ASSERT_FALSE(expected.text.empty());
  for (Device d : {Device::cuda, Device::automatic}) {
    SCOPED_TRACE(d == Device::cuda ? "cuda" : "automatic");
    auto s = openTiny(d);
    ASSERT_TRUE(s);
    ChatReply r = replyOf(*s);
    ASSERT_GT(r.stats.n_generated, 0);
    if (r.backend == "cpu") {
      EXPECT_FALSE(r.backendNote.empty()) << "the CPU served a GPU request without saying why";
      EXPECT_EQ(r.text, expected.text);
    } else {
      EXPECT_EQ(r.backend.rfind("cuda:", 0), 0u) << r.backend;
      EXPECT_EQ(r.backendNote, "");
    }
  }
  // No machine has a GPU number 97: always the CPU, with a reason.
  auto s = openTiny(Device::cuda, 97);
  ASSERT_TRUE(s);
  ChatReply r = replyOf(*s);
  EXPECT_EQ(r.backend, "cpu");
  EXPECT_FALSE(r.backendNote.empty());
  EXPECT_EQ(r.text, expected.text);
}
