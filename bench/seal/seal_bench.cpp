// Microsoft SEAL 4.1 CKKS micro-benchmark, matching `unseen bench ckks --json`
// (crates/ckks/src/bench.rs): N = 8192, coeff_modulus {31, 26 x 6, 31}
// (7 data primes + 1 special prime, like the `n8192-cnn` preset), scale 2^26,
// one thread, median of ITERS (default 30) timed runs after one warm-up.
//
// Output: one JSON object per line on stdout.
//   {"impl":"seal","version":"4.1.2","op":"mul","n":8192,"levels":7,"ms_median":0.9}
//   {"impl":"seal","version":"4.1.2","size":"ct_fresh_sk_none","bytes":917609}
//
// Usage: seal_bench [ITERS]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "seal/seal.h"

using namespace seal;

namespace
{
    const char *kVersion = SEAL_VERSION;
    std::size_t g_iters = 30;
    std::size_t g_n = 0;
    std::size_t g_levels = 0;

    // Median in ms of g_iters runs of `op`, after one warm-up run. `setup` runs
    // before every call of `op` and is not timed (used for in-place ops).
    double median_ms(const std::function<void()> &op, const std::function<void()> &setup = nullptr)
    {
        if (setup)
        {
            setup();
        }
        op(); // warm-up
        std::vector<double> t;
        t.reserve(g_iters);
        for (std::size_t i = 0; i < g_iters; i++)
        {
            if (setup)
            {
                setup();
            }
            auto s = std::chrono::steady_clock::now();
            op();
            auto e = std::chrono::steady_clock::now();
            t.push_back(std::chrono::duration<double, std::milli>(e - s).count());
        }
        std::sort(t.begin(), t.end());
        return t[t.size() / 2];
    }

    void rec(const std::string &op, double ms)
    {
        std::ostringstream o;
        o.precision(6);
        o << "{\"impl\":\"seal\",\"version\":\"" << kVersion << "\",\"op\":\"" << op << "\",\"n\":" << g_n
          << ",\"levels\":" << g_levels << ",\"ms_median\":" << ms << "}";
        std::cout << o.str() << std::endl;
    }

    void size_rec(const std::string &what, std::streamoff bytes, const std::string &note = "")
    {
        std::cout << "{\"impl\":\"seal\",\"version\":\"" << kVersion << "\",\"size\":\"" << what
                  << "\",\"bytes\":" << bytes;
        if (!note.empty())
        {
            std::cout << ",\"note\":\"" << note << "\"";
        }
        std::cout << "}" << std::endl;
    }

    template <class T>
    std::streamoff saved_bytes(const T &obj, compr_mode_type mode)
    {
        std::stringstream ss;
        return obj.save(ss, mode);
    }

    const char *mode_name(compr_mode_type m)
    {
        switch (m)
        {
        case compr_mode_type::none:
            return "none";
#ifdef SEAL_USE_ZLIB
        case compr_mode_type::zlib:
            return "zlib";
#endif
#ifdef SEAL_USE_ZSTD
        case compr_mode_type::zstd:
            return "zstd";
#endif
        default:
            return "?";
        }
    }
} // namespace

int main(int argc, char **argv)
{
    if (argc > 1)
    {
        g_iters = static_cast<std::size_t>(std::max(1L, std::strtol(argv[1], nullptr, 10)));
    }

    EncryptionParameters parms(scheme_type::ckks);
    const std::size_t n = 8192;
    parms.set_poly_modulus_degree(n);
    parms.set_coeff_modulus(CoeffModulus::Create(n, { 31, 26, 26, 26, 26, 26, 26, 31 }));
    SEALContext context(parms, true, sec_level_type::tc128);
    if (!context.parameters_set())
    {
        std::cerr << "invalid parameters: " << context.parameter_error_message() << std::endl;
        return 1;
    }
    const double scale = std::pow(2.0, 26);
    auto top = context.first_context_data();
    g_n = n;
    g_levels = top->parms().coeff_modulus().size(); // data primes at the top level (7)

    KeyGenerator keygen(context);
    const SecretKey &sk = keygen.secret_key();
    PublicKey pk;
    keygen.create_public_key(pk);
    RelinKeys rlk;
    keygen.create_relin_keys(rlk);
    std::vector<int> steps;
    for (int i = 1; i <= 16; i++)
    {
        steps.push_back(i);
    }
    GaloisKeys gk;
    keygen.create_galois_keys(steps, gk);

    Encryptor encryptor(context, pk, sk);
    Decryptor decryptor(context, sk);
    Evaluator evaluator(context);
    CKKSEncoder encoder(context);

    std::vector<double> vals(encoder.slot_count());
    for (std::size_t i = 0; i < vals.size(); i++)
    {
        vals[i] = std::sin(static_cast<double>(i) * 0.01);
    }
    Plaintext pt;
    encoder.encode(vals, top->parms_id(), scale, pt);
    Ciphertext ct, ct2;
    encryptor.encrypt(pt, ct);
    encryptor.encrypt_symmetric(pt, ct2);
    Ciphertext prod3; // size 3, before relinearization
    evaluator.multiply(ct, ct2, prod3);
    Ciphertext prod; // relinearized product (size 2, scale 2^52, top level)
    evaluator.relinearize(prod3, rlk, prod);

    // Sanity check: decrypt(ct * ct2) after rescale ~ vals^2.
    {
        Ciphertext r;
        evaluator.rescale_to_next(prod, r);
        Plaintext p;
        decryptor.decrypt(r, p);
        std::vector<double> out;
        encoder.decode(p, out);
        double err = 0;
        for (std::size_t i = 0; i < vals.size(); i++)
        {
            err = std::max(err, std::abs(out[i] - vals[i] * vals[i]));
        }
        // Rotation check on a vector whose neighbouring slots differ by O(1).
        std::vector<double> w(vals.size());
        for (std::size_t i = 0; i < w.size(); i++)
        {
            w[i] = std::sin(static_cast<double>(i) * 1.3);
        }
        Plaintext pw;
        encoder.encode(w, top->parms_id(), scale, pw);
        Ciphertext cw, rot;
        encryptor.encrypt(pw, cw);
        evaluator.rotate_vector(cw, 1, gk, rot);
        decryptor.decrypt(rot, p);
        encoder.decode(p, out);
        double rerr = 0;
        for (std::size_t i = 0; i < w.size(); i++)
        {
            rerr = std::max(rerr, std::abs(out[i] - w[(i + 1) % w.size()]));
        }
        // Note: with a 31-bit special prime and 26..31-bit data primes, SEAL's key-switching
        // noise is about 1e-3..1e-2 at scale 2^26, hence the loose bound.
        std::cerr << "sanity: max |dec(ct*ct)-v^2| = " << err << ", max |dec(rot1(w))-(w<<1)| = " << rerr
                  << std::endl;
        if (!(err < 5e-2) || !(rerr < 5e-2))
        {
            std::cerr << "sanity check failed" << std::endl;
            return 2;
        }
    }

    Ciphertext dst;
    Plaintext dpt;
    std::vector<double> dvals;

    // Extra (not in unseen's list): encoding cost, for reference.
    rec("encode", median_ms([&] { encoder.encode(vals, top->parms_id(), scale, dpt); }));

    rec("encrypt_pk", median_ms([&] { encryptor.encrypt(pt, dst); }));
    rec("encrypt_sk", median_ms([&] { encryptor.encrypt_symmetric(pt, dst); }));
    // CKKS decrypt in SEAL stops at c0 + c1*s in NTT form (no inverse NTT).
    rec("decrypt", median_ms([&] { decryptor.decrypt(ct, dpt); }));
    rec("decrypt_decode", median_ms([&] {
            decryptor.decrypt(ct, dpt);
            encoder.decode(dpt, dvals);
        }));
    rec("mul_plain", median_ms([&] { evaluator.multiply_plain(ct, pt, dst); }));
    rec("mul", median_ms([&] { evaluator.multiply(ct, ct2, dst); }));
    {
        Ciphertext tmp;
        rec("relin", median_ms([&] { evaluator.relinearize_inplace(tmp, rlk); }, [&] { tmp = prod3; }));
    }
    rec("mul_relin", median_ms([&] {
            evaluator.multiply(ct, ct2, dst);
            evaluator.relinearize_inplace(dst, rlk);
        }));
    rec("rescale", median_ms([&] { evaluator.rescale_to_next(prod, dst); }));
    rec("rotate", median_ms([&] { evaluator.rotate_vector(ct, 1, gk, dst); }));
    {
        std::vector<Ciphertext> outs(16);
        rec("rotate_hoisted_16", median_ms([&] {
                for (int s = 1; s <= 16; s++)
                {
                    evaluator.rotate_vector(ct, s, gk, outs[s - 1]);
                }
            }));
    }

    // Sizes.
    const compr_mode_type def = Serialization::compr_mode_default;
    const std::string def_note = std::string("compr_mode_default=") + mode_name(def);
    {
        Ciphertext fresh;
        encryptor.encrypt_symmetric(pt, fresh);
        size_rec("ct_fresh_sk_none", saved_bytes(fresh, compr_mode_type::none));
        size_rec("ct_fresh_sk_default", saved_bytes(fresh, def), def_note);
        Serializable<Ciphertext> seeded = encryptor.encrypt_symmetric(pt);
        size_rec("ct_seeded_sk_none", saved_bytes(seeded, compr_mode_type::none));
        size_rec("ct_seeded_sk_default", saved_bytes(seeded, def), def_note);
        size_rec("ct_fresh_pk_none", saved_bytes(ct, compr_mode_type::none));
        Ciphertext lvl1;
        evaluator.rescale_to_next(prod, lvl1);
        size_rec("ct_after_rescale_none", saved_bytes(lvl1, compr_mode_type::none), "6 data primes");
    }
    size_rec("public_key_none", saved_bytes(pk, compr_mode_type::none));
    size_rec("relin_key_none", saved_bytes(rlk, compr_mode_type::none));
    size_rec("relin_key_seeded_none", saved_bytes(keygen.create_relin_keys(), compr_mode_type::none));
    {
        GaloisKeys one;
        keygen.create_galois_keys(std::vector<int>{ 1 }, one);
        size_rec("galois_key_1_none", saved_bytes(one, compr_mode_type::none), "GaloisKeys object with step 1 only");
        size_rec(
            "galois_key_1_seeded_none", saved_bytes(keygen.create_galois_keys(std::vector<int>{ 1 }), compr_mode_type::none),
            "GaloisKeys object with step 1 only");
        size_rec("galois_keys_1to16_none", saved_bytes(gk, compr_mode_type::none), "steps 1..16");
    }
    return 0;
}
