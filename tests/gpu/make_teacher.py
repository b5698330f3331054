"A random-weight Llama-3.2-1B-shaped teacher with the character tokenizer, saved for offline distillation runs."
import sys, torch
from transformers import LlamaConfig, LlamaForCausalLM
from thinkfast.generate import char_tokenizer
out = sys.argv[1]
tok = char_tokenizer()
c = LlamaConfig(vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
                num_key_value_heads=8, head_dim=64, rope_parameters=dict(rope_type="default", rope_theta=500000.0),
                tie_word_embeddings=True, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
torch.manual_seed(0)
m = LlamaForCausalLM(c).to(torch.bfloat16)
m.save_pretrained(out); tok.save_pretrained(out)
print("saved", out)
